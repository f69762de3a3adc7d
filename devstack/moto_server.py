"""moto in server mode (S3, SQS, EventBridge, Scheduler, ...) as a child process on loopback."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import requests

from devstack.paths import DEV_VENV
from devstack.processes import (
    LOOPBACK,
    ManagedProcess,
    StackError,
    child_env,
    free_port,
    wait_for_http,
)

READY_TIMEOUT = 30.0


@dataclass
class MotoServer:
    """A running moto server: its endpoint and the process behind it."""

    endpoint_url: str
    port: int
    process: ManagedProcess = field(repr=False)

    def reset(self) -> None:
        """Forget every resource moto holds (its /moto-api/reset)."""
        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        self.process.stop()


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
    """Start `moto_server -H 127.0.0.1 -p PORT` and wait until its API answers."""
    port = port or free_port()
    process = ManagedProcess(
        "moto-server",
        [str(moto_server_bin()), "-H", LOOPBACK, "-p", str(port)],
        env=child_env(),
        cwd=state_dir,
        log_path=state_dir / "moto-server.log",
    )
    server = MotoServer(endpoint_url=f"http://{LOOPBACK}:{port}", port=port, process=process)
    state_dir.mkdir(parents=True, exist_ok=True)
    process.start()
    try:
        wait_for_http(
            f"{server.endpoint_url}/moto-api/data.json",
            READY_TIMEOUT,
            interval=0.2,
            process=process,
            accept=lambda response: response.status_code == 200,
        )
    except BaseException:
        process.stop()
        raise
    return server
