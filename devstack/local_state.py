"""The state file of the stack `make up` runs (``.stack/state/up.json``), and what reads it:
`python -m devstack` and `dagtrigger local` show the same status, hints and request tables.

The file holds ``pid`` (the stack's process group), ``ready``, ``endpoints``, ``pgids`` (Airflow's
process groups, stopped by ``down`` even if the stack died), ``resources`` (what a user or the
`dagtrigger` command needs: endpoints, names, the Airflow login) and a few details for the hints.
It holds the local Airflow's password, so it is readable by its owner only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shlex
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from devstack.dynamodb_local import DUMMY_CREDENTIALS
from devstack.paths import REPO_ROOT, STATE_DIR, write_private_file
from devstack.procfs import group_pids

UP_STATE = STATE_DIR / "up.json"
UP_LOCK = STATE_DIR / "up.lock"
#: the contents of the file the hint drops in S3
EXAMPLE_BODY = "region,amount\nnorth,1200\n"


def read_state(path: Path = UP_STATE) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return state if isinstance(state, dict) else None


def write_state(state: dict[str, Any], path: Path = UP_STATE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    write_private_file(temporary, json.dumps(state, indent=2))
    temporary.replace(path)


@contextlib.contextmanager
def start_lock(path: Path = UP_LOCK) -> Iterator[bool]:
    """Hold the lock of starting a stack; yields False if another `up` holds it. The kernel
    drops it when the holder exits, so a crashed `up` leaves nothing stale."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def running_stack_pid(state: dict[str, Any] | None) -> int | None:
    """The process group of the stack the state describes, if it still runs."""
    if not state or "pid" not in state:
        return None
    pid = int(state["pid"])
    return pid if group_pids(pid) else None


# ---------------------------------------------------------------------------- what it prints


def resources_table(resources: dict[str, Any], *, function_log: str | None = None) -> Table:
    """Every endpoint and name of the running stack, one per row."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    login = f"{resources['airflow_user']} / {resources['airflow_password']}"
    rows = [
        ("Airflow UI", f"{resources['airflow_url']}  (login {login})"),
        (
            "MWAA emulator",
            f"{resources['mwaa_endpoint']}  (environment {resources['mwaa_environment']})",
        ),
        ("moto", f"{resources['moto_endpoint']}  (S3, SQS, EventBridge, Scheduler, Secrets)"),
        ("DynamoDB Local", resources["dynamodb_endpoint"]),
        ("HTTP API", f"{resources['api_url']}  (SigV4-signed, service execute-api)"),
        ("bucket", resources["bucket"]),
        ("S3 queue", resources["queue_url"]),
        ("S3 DLQ", resources["dlq_url"]),
        ("history table", resources["table"]),
        ("event bus", resources["event_bus"]),
        ("routes file", _relative(resources["routes_file"])),
    ]
    if function_log:
        rows.append(("function logs", _relative(function_log)))
    for name, value in rows:
        table.add_row(name, value)
    return table


def credential_exports(resources: dict[str, Any]) -> str:
    """``export`` lines that point the AWS CLI and boto3 in a shell at the stack's region with
    its dummy credentials (endpoints are given per command)."""
    return (
        f"export AWS_DEFAULT_REGION={resources['region']} "
        f"AWS_ACCESS_KEY_ID={DUMMY_CREDENTIALS['aws_access_key_id']} "
        f"AWS_SECRET_ACCESS_KEY={DUMMY_CREDENTIALS['aws_secret_access_key']}"
    )


def drop_commands(resources: dict[str, Any], bucket: str, key: str) -> list[str]:
    """Copy-paste commands that put a small CSV at s3://bucket/key on the stack's S3: the AWS
    CLI's if it is installed, else a note and the same with boto3."""
    endpoint = resources["moto_endpoint"]
    if shutil.which("aws"):
        body = EXAMPLE_BODY.replace("\n", "\\n")
        target = shlex.quote(f"s3://{bucket}/{key}")
        return [f"printf '{body}' | aws --endpoint-url {endpoint} s3 cp - {target}"]
    python = shlex.quote(sys.executable)
    # JSON strings are Python literals too, in double quotes that the shell's quotes leave be.
    script = (
        f'import boto3; boto3.client("s3", endpoint_url={json.dumps(endpoint)}).put_object('
        f"Bucket={json.dumps(bucket)}, Key={json.dumps(key)}, Body=b{json.dumps(EXAMPLE_BODY)})"
    )
    return [
        "# the aws CLI is not installed here; the same with boto3:",
        f"{python} -c {shlex.quote(script)}",
    ]


# ---------------------------------------------------------------------- the emulator's record


def emulator_requests(resources: dict[str, Any], *, limit: int) -> list[dict[str, Any]]:
    """The last `limit` requests the stack's MWAA emulator answered, oldest first."""
    answer = requests.get(
        f"{resources['mwaa_endpoint']}/_emulator/requests", params={"limit": limit}, timeout=10
    )
    answer.raise_for_status()
    entries: list[dict[str, Any]] = answer.json()["requests"]
    return entries


def requests_table(entries: list[dict[str, Any]]) -> Table:
    table = Table(title="requests the MWAA emulator answered (oldest first)")
    for column in ("time", "operation", "environment", "request", "status", "ms"):
        table.add_column(column, overflow="fold", justify="right" if column == "ms" else "left")
    for entry in entries:
        status = str(entry["status"])
        if entry.get("error"):
            status += f" {entry['error']}"
        style = "green" if entry["status"] < 400 else "red"
        table.add_row(
            entry["time"].replace("T", " ").removesuffix("Z"),
            entry["operation"],
            entry.get("environment") or "-",
            escape(entry.get("request") or ""),
            f"[{style}]{escape(status)}[/{style}]",
            f"{entry['duration_ms']:.0f}",
        )
    return table


def print_requests(console: Console, state: dict[str, Any] | None, *, limit: int) -> bool:
    """Print the emulator's record; False (and why) if no running stack can be asked."""
    if running_stack_pid(state) is None or state is None or "resources" not in state:
        console.print("no stack is running: start one with `make up`")
        return False
    try:
        entries = emulator_requests(state["resources"], limit=limit)
    except requests.RequestException as error:
        console.print(f"the MWAA emulator did not answer: {error}")
        return False
    if not entries:
        console.print("the MWAA emulator has answered no request yet")
        return True
    console.print(requests_table(entries))
    return True


def _relative(path: str) -> str:
    try:
        return str(Path(path).relative_to(REPO_ROOT))
    except ValueError:
        return path
