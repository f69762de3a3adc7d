"""The fault matrix's harness (`make reliability`; a bounded subset runs in `make test`).

On the local stack, against real Airflow and the MWAA emulator's faults, the scenarios of
``tests/reliability`` check the promise that every accepted event ends as exactly one DAG run,
a recorded rejection with its reason, or a dead-letter message with an alarm:

* `instances`: each function's invocations in processes of their own, side by side, killable;
* `kill_points`: where such a process dies on purpose (after the claim, after Airflow accepted
  the run, before the ledger's final write);
* `harness`: the stack driven and observed (shortened waits, reconciler passes, runs counted in
  Airflow, records read from DynamoDB, dead letters redriven);
* `accounting` and `report`: what became of each event, and the table printed at the end.
"""
