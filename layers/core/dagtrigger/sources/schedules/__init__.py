"""EventBridge Scheduler schedules that start DAG runs: the function's input contract, the
service that turns one fire into at most one run, and management of the stack's schedules."""
