"""The HTTP API as a source of triggers: IAM-signed DAG runs, replays, and history reads."""
