"""`dagtrigger`: the operator's command (routes checks and dry runs, history, replays, redrive,
backfill, the local stack). Never deployed: it talks to a stack through its API, table and
queues, found from the CloudFormation outputs (`--stack`) or the running local stack."""
