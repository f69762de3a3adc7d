"""`python -m devstack`: run dagtrigger's local stack (`make demo`, `make up`, `make down`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from dagtrigger.transports.base import TransportKind
from devstack.airflow_install import AIRFLOW_RELEASES, release
from devstack.demo.scenario import run_demo
from devstack.local_state import (
    UP_STATE,
    credential_exports,
    drop_commands,
    print_requests,
    read_state,
    resources_table,
    running_stack_pid,
    start_lock,
    write_state,
)
from devstack.paths import REPO_ROOT, STATE_DIR
from devstack.processes import StackError
from devstack.procfs import group_pids
from devstack.stack import DEMO_ROUTES, LocalStack, StackConfig
from devstack.stack_routes import RoutesFileError, check_routes_file

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
# Wide enough for run ids when the output is a file or a CI log (rich assumes 80 columns).
console = Console(width=None if sys.stdout.isatty() else 180)
errors = Console(stderr=True, width=None if sys.stderr.isatty() else 180)
DEMO_STATE_DIR = STATE_DIR / "demo"
UP_STATE_DIR = StackConfig().state_dir
FUNCTION_LOG = "functions.log"


def _checked_airflow(value: str) -> str:
    try:
        release(value)
    except StackError as error:
        raise typer.BadParameter(str(error)) from None
    return value


AIRFLOW_OPTION = typer.Option(
    "3",
    "--airflow",
    "--airflow-major",
    help="3 (the newest Airflow), 2 (MWAA's newest Airflow 2), or a version: "
    + ", ".join(f"{key} ({release.version})" for key, release in AIRFLOW_RELEASES.items()),
    callback=_checked_airflow,
)
TRANSPORT_OPTION = typer.Option(
    None, help="the transport of every environment of the routes file (default: the file's own)"
)
ROUTES_OPTION = typer.Option(
    DEMO_ROUTES, exists=True, dir_okay=False, help="the routes file (checked before it starts)"
)
LOGS_OPTION = typer.Option(
    False, "--logs", help="show the functions' JSON logs on the console too (always in a file)"
)


def _progress(message: str) -> None:
    console.print(f"[cyan]>[/cyan] {message}")


def _checked_routes(routes: Path) -> Path:
    """`routes`, absolute, if the routes loader accepts it; else its message and exit 2."""
    try:
        check_routes_file(routes)
    except RoutesFileError as error:
        errors.print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    return routes.resolve()


def _relative(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


@app.command()
def demo(
    airflow_version: str = AIRFLOW_OPTION,
    transport: TransportKind | None = TRANSPORT_OPTION,
    logs: bool = LOGS_OPTION,
) -> None:
    """Start the stack, drop files in S3, show the DAG runs they started, stop the stack."""
    started = time.monotonic()
    function_log = DEMO_STATE_DIR / FUNCTION_LOG
    function_log.unlink(missing_ok=True)
    config = StackConfig(
        airflow_version=airflow_version,
        transport=transport.value if transport else None,
        state_dir=DEMO_STATE_DIR,
        function_log=function_log,
        echo_function_logs=logs,
    )
    stack = LocalStack(config, progress=_progress)
    try:
        stack.start()
        _progress(
            f"stack ready in {time.monotonic() - started:.0f} s; the functions log to "
            f"{_relative(function_log)}" + ("" if logs else " (--logs, or LOGS=1, shows them)")
        )
        _progress("dropping files into S3")
        result = run_demo(stack, console)
        memory_mib = stack.memory_pss_bytes() / 2**20
        console.print(
            f"stack memory: {memory_mib:.0f} MiB PSS (Airflow, DynamoDB Local, moto, runner)"
        )
        assert stack.airflow is not None
        console.print(
            f"Airflow UI: {stack.airflow.base_url} ({stack.airflow.username} / "
            f"{stack.airflow.password}) - it stops with the demo; `make up` keeps a stack running"
        )
    finally:
        _progress("stopping the stack")
        stack.stop()
    console.print(f"demo finished in {time.monotonic() - started:.0f} s")
    if not result.ok:
        console.print(f"[red]an expected DAG run did not succeed[/red]; see {function_log}")
        raise typer.Exit(code=1)
    console.print("[green]every file started exactly one successful DAG run[/green]")


@app.command()
def up(
    airflow_version: str = AIRFLOW_OPTION,
    transport: TransportKind | None = TRANSPORT_OPTION,
    routes: Path = ROUTES_OPTION,
) -> None:
    """Start the stack in the background and print how to drive it (`make down` stops it)."""
    routes = _checked_routes(routes)
    command = [sys.executable, "-m", "devstack", "serve", "--airflow", airflow_version]
    command += ["--routes", str(routes)]
    if transport is not None:
        command += ["--transport", transport.value]
    log = STATE_DIR / "up.log"
    # One stack per checkout: its state folder and state file are fixed. The lock makes the
    # check and the start one step; the state it writes at once tells a later `up` (and `down`).
    with start_lock() as locked:
        if not locked or running_stack_pid(read_state()) is not None:
            console.print(
                f"a stack is already running or starting ({UP_STATE}); `make down` stops it"
            )
            raise typer.Exit(code=0)
        UP_STATE.unlink(missing_ok=True)
        with log.open("w") as log_file:
            process = subprocess.Popen(
                command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
            )
        write_state({"pid": process.pid, "ready": False})
    version = release(airflow_version).version
    with console.status(f"starting the stack with Airflow {version} (about 15 s) ..."):
        while process.poll() is None:
            state = read_state()
            if state and state.get("ready"):
                break
            time.sleep(1)
    state = read_state()
    if process.poll() is not None or not state or not state.get("ready"):
        console.print(f"[red]the stack did not start[/red]; see {log}")
        raise typer.Exit(code=1)
    _print_how_to_drive(state)


def _print_how_to_drive(state: dict[str, Any]) -> None:
    resources = state["resources"]
    transports = ", ".join(f"{alias}: {kind}" for alias, kind in state["transports"].items())
    console.print(
        f"[green]local stack up[/green]: Apache Airflow {state['airflow_version']}, "
        f"environments {transports}"
    )
    console.print(resources_table(resources, function_log=state["function_log"]))
    console.print()
    _print_plain("# for the AWS CLI and boto3 in your shell:")
    _print_plain(credential_exports(resources))
    example = state.get("drop_example")
    if example:
        maybe = "" if example["certain"] else " (if the route's glob, regex or size bounds take it)"
        _print_plain(
            f"# drop a file that starts {example['dag_id']} (route {example['route']}){maybe}:"
        )
        for line in drop_commands(resources, example["bucket"], example["key"]):
            _print_plain(line)
    _print_plain(
        "# then: `dagtrigger history`, `dagtrigger local requests` (what the MWAA emulator "
        "answered), the Airflow UI; `make down` stops the stack"
    )


def _print_plain(line: str) -> None:
    """A line to copy and paste: no markup, no colours, never wrapped."""
    console.print(line, markup=False, highlight=False, soft_wrap=True)


@app.command(hidden=True)
def serve(
    airflow_version: str = "3",
    transport: TransportKind | None = None,
    routes: Path = DEMO_ROUTES,
) -> None:
    """Run the stack in the foreground until SIGTERM (what `up` starts in the background)."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    function_log = UP_STATE_DIR / FUNCTION_LOG
    function_log.unlink(missing_ok=True)
    config = StackConfig(
        airflow_version=airflow_version,
        transport=transport.value if transport else None,
        routes_file=routes,
        function_log=function_log,
    )
    stack = LocalStack(config, progress=_progress)
    try:
        stack.start()
        assert stack.airflow is not None
        assert stack.moto is not None
        assert stack.dynamodb_local is not None
        assert stack.emulator is not None
        assert stack.runner is not None
        assert stack.routes is not None
        endpoints = {
            "airflow": stack.airflow.base_url,
            "mwaa": stack.emulator.control_plane_url,
            "moto (S3/SQS)": stack.moto.endpoint_url,
            "dynamodb": stack.dynamodb_local.endpoint_url,
            "http api": stack.runner.http_api_url or "-",
        }
        example = stack.routes.drop_example
        write_state(
            {
                "pid": os.getpid(),
                "ready": True,
                "endpoints": endpoints,
                "pgids": [p.pid for p in stack.airflow.processes if p.pid],
                "resources": stack.resources(),
                "airflow_version": stack.airflow.version,
                "transports": stack.routes.transports,
                "function_log": str(function_log),
                "drop_example": vars(example) if example else None,
            }
        )
        stopping.wait()
    finally:
        stack.stop()
        if (read_state() or {}).get("pid") == os.getpid():  # never another stack's state
            UP_STATE.unlink(missing_ok=True)


@app.command()
def down() -> None:
    """Stop the stack `up` started, and anything of it left behind."""
    state = read_state() or {}
    pid = running_stack_pid(state)
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


@app.command("requests")
def show_requests(
    limit: int = typer.Option(50, min=1, max=500, help="how many of the newest to show"),
) -> None:
    """The requests the running stack's MWAA emulator answered: control-plane calls and CLI
    commands, with their status and duration."""
    if not print_requests(console, read_state(), limit=limit):
        raise typer.Exit(code=1)


if __name__ == "__main__":
    app()
