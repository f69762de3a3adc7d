"""The local development stack: real Airflow, DynamoDB Local and moto on loopback ports.

Development only, never deployed. Each server runs as a child process in its own process group
so that stopping it stops everything it started.
"""
