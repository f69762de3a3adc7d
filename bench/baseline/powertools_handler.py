"""A minimal well-built handler: Powertools Logger and a boto3 client, nothing else. The cold
start benchmark uses it as the floor a Powertools-based function can reach."""

import boto3
from aws_lambda_powertools import Logger

logger = Logger(service="bench")
client = boto3.client("mwaa")


@logger.inject_lambda_context
def lambda_handler(event, context):
    logger.info("event received", extra={"records": len(event.get("Records", []))})
    return {"records": len(event.get("Records", []))}
