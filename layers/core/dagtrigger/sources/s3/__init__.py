"""S3 ``Object Created`` events from SQS: parse, match routes, trigger one run per routed object."""
