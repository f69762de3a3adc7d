"""moto in server mode (S3, SQS, EventBridge, Scheduler, ...) as a child process on loopback."""

from __future__ import annotations

import sys
from pathlib import Path

import requests

from devstack.lifecycle import stopped_on_failure
from devstack.paths import DEV_VENV
from devstack.processes import (
    LOOPBACK,
    ServerProcess,
    StackError,
    free_port,
    wait_for_http,
)

READY_TIMEOUT = 30.0


class MotoServer(ServerProcess):
    """A running moto server: its endpoint and the process behind it."""

    def reset(self) -> None:
        """Forget every resource moto holds (its /moto-api/reset)."""
        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()


def moto_server_bin() -> Path:
    """moto_server from the development venv, else beside the running interpreter."""
    for candidate in (
        DEV_VENV / "bin" / "moto_server",
        Path(sys.executable).parent / "moto_server",
    ):
        if candidate.exists():
            return candidate
    raise StackError("moto_server not found in .venv/bin: run `make venv` first")


def start_moto(*, state_dir: Path, port: int | None = None) -> MotoServer:
    """Start moto's server (`moto_server -H 127.0.0.1 -p PORT`, with the SQS redrive moto lacks:
    `devstack.moto_sqs_redrive`) and wait until its API answers."""
    port = port or free_port()
    state_dir.mkdir(parents=True, exist_ok=True)
    python = moto_server_bin().parent / "python"
    server = MotoServer.launch(
        "moto-server",
        [str(python), "-m", "devstack.moto_sqs_redrive", "-H", LOOPBACK, "-p", str(port)],
        port=port,
        cwd=state_dir,
        log_path=state_dir / "moto-server.log",
    )
    with stopped_on_failure(server):
        wait_for_http(
            f"{server.endpoint_url}/moto-api/data.json",
            READY_TIMEOUT,
            interval=0.2,
            process=server.process,
            accept=lambda response: response.status_code == 200,
        )
    return server
