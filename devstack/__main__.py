"""`python -m devstack`: run dagtrigger's local stack (`make demo`, `make up`, `make down`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import typer
from rich.console import Console

from devstack.demo.scenario import run_demo
from devstack.paths import STATE_DIR
from devstack.procfs import group_pids
from devstack.stack import LocalStack, StackConfig

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
# Wide enough for run ids when the output is a file or a CI log (rich assumes 80 columns).
console = Console(width=None if sys.stdout.isatty() else 180)
UP_STATE = STATE_DIR / "up.json"


def _progress(message: str) -> None:
    console.print(f"[cyan]>[/cyan] {message}")


@app.command()
def demo(airflow_major: int = typer.Option(3, help="Airflow major version: 3 or 2")) -> None:
    """Start the stack, drop files in S3, show the DAG runs they started, stop the stack."""
    started = time.monotonic()
    config = StackConfig(airflow_major=airflow_major, state_dir=STATE_DIR / "demo")
    stack = LocalStack(config, progress=_progress)
    try:
        stack.start()
        _progress(f"stack ready in {time.monotonic() - started:.0f} s; dropping files into S3")
        result = run_demo(stack, console)
        memory_mib = stack.memory_pss_bytes() / 2**20
        console.print(
            f"stack memory: {memory_mib:.0f} MiB PSS (Airflow, DynamoDB Local, moto, runner)"
        )
        assert stack.airflow is not None
        console.print(
            f"Airflow UI: {stack.airflow.base_url} (admin / admin) - it stops with the demo; "
            "`make up` keeps a stack running"
        )
    finally:
        _progress("stopping the stack")
        stack.stop()
    console.print(f"demo finished in {time.monotonic() - started:.0f} s")
    if not result.ok:
        console.print("[red]an expected DAG run did not succeed[/red]")
        raise typer.Exit(code=1)
    console.print("[green]every file started exactly one successful DAG run[/green]")


@app.command()
def up(airflow_major: int = typer.Option(3, help="Airflow major version: 3 or 2")) -> None:
    """Start the stack in the background and print its addresses (`make down` stops it)."""
    if _running_stack_pid() is not None:
        console.print(f"a stack is already running: {UP_STATE}")
        raise typer.Exit(code=0)
    UP_STATE.parent.mkdir(parents=True, exist_ok=True)
    UP_STATE.unlink(missing_ok=True)
    log = STATE_DIR / "up.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack", "serve", "--airflow-major", str(airflow_major)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    with console.status("starting the stack (Airflow takes about 15 s) ..."):
        while process.poll() is None:
            state = _read_state()
            if state and state.get("ready"):
                break
            time.sleep(1)
    state = _read_state()
    if process.poll() is not None or not state:
        console.print(f"[red]the stack did not start[/red]; see {log}")
        raise typer.Exit(code=1)
    for name, value in state["endpoints"].items():
        console.print(f"  {name:<16} {value}")
    console.print("stop it with `make down`")


@app.command(hidden=True)
def serve(airflow_major: int = 3) -> None:
    """Run the stack in the foreground until SIGTERM (what `up` starts in the background)."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    stack = LocalStack(StackConfig(airflow_major=airflow_major), progress=_progress)
    try:
        stack.start()
        assert stack.airflow
        assert stack.moto
        assert stack.dynamodb_local
        assert stack.emulator
        assert stack.runner
        endpoints = {
            "airflow": stack.airflow.base_url,
            "mwaa": stack.emulator.control_plane_url,
            "moto (S3/SQS)": stack.moto.endpoint_url,
            "dynamodb": stack.dynamodb_local.endpoint_url,
            "http api": stack.runner.http_api_url or "-",
        }
        pgids = [p.pid for p in stack.airflow.processes if p.pid]
        _write_state({"pid": os.getpid(), "ready": True, "endpoints": endpoints, "pgids": pgids})
        stopping.wait()
    finally:
        stack.stop()
        UP_STATE.unlink(missing_ok=True)


@app.command()
def down() -> None:
    """Stop the stack `up` started, and anything of it left behind."""
    state = _read_state() or {}
    pid = _running_stack_pid()
    if pid is not None:
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and group_pids(pid):
            time.sleep(0.5)
        if group_pids(pid):
            os.killpg(pid, signal.SIGKILL)
    for pgid in state.get("pgids", []):
        if group_pids(pgid):
            os.killpg(pgid, signal.SIGKILL)
    UP_STATE.unlink(missing_ok=True)
    console.print("stack stopped" if pid is not None else "no stack was running")


def _read_state() -> dict | None:
    try:
        state: dict = json.loads(UP_STATE.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return state


def _write_state(state: dict) -> None:
    temporary = UP_STATE.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2))
    temporary.replace(UP_STATE)


def _running_stack_pid() -> int | None:
    state = _read_state()
    if not state:
        return None
    pid = int(state["pid"])
    return pid if group_pids(pid) else None


if __name__ == "__main__":
    app()
