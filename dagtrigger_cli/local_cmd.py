"""`dagtrigger local up|down|status|demo|requests`: the local stack of this checkout.

``up``, ``down`` and ``demo`` run ``python -m devstack`` (what ``make up``, ``make down`` and
``make demo`` run) with the same options; ``status`` and ``requests`` read the state file that
``make up`` writes (``.stack/state/up.json``) and ask nothing but the stack itself.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from dagtrigger.transports.base import TransportKind
from dagtrigger_cli.output import console, fail, print_json
from devstack.airflow_install import AIRFLOW_RELEASES, release
from devstack.local_state import (
    UP_STATE,
    print_requests,
    read_state,
    resources_table,
    running_stack_pid,
)
from devstack.paths import REPO_ROOT
from devstack.processes import StackError
from devstack.stack_routes import RoutesFileError, check_routes_file

app = typer.Typer(
    no_args_is_help=True,
    help="The local stack (DynamoDB Local, moto, Airflow, the MWAA emulator, the functions).",
)


def _checked_airflow(value: str) -> str:
    try:
        release(value)
    except StackError as error:
        raise typer.BadParameter(str(error)) from None
    return value


AirflowVersion = Annotated[
    str,
    typer.Option(
        "--airflow",
        help="3 (the newest Airflow), 2 (MWAA's newest Airflow 2), or a version: "
        + ", ".join(f"{key} ({found.version})" for key, found in AIRFLOW_RELEASES.items()),
        callback=_checked_airflow,
    ),
]
Transport = Annotated[
    TransportKind | None,
    typer.Option(help="the transport of every environment of the routes file (default: theirs)"),
]
RoutesFile = Annotated[
    Path | None,
    typer.Option(exists=True, dir_okay=False, help="the routes file to run (default: the demo's)"),
]
StateFile = Annotated[
    Path,
    typer.Option(
        "--state-file",
        envvar="DAGTRIGGER_LOCAL_STATE",
        hidden=True,
        help="the state file `make up` writes (tests point it elsewhere)",
    ),
]


@app.command()
def up(
    airflow: AirflowVersion = "3", transport: Transport = None, routes: RoutesFile = None
) -> None:
    """Start the local stack in the background and print how to drive it (as `make up`)."""
    arguments = ["up", *_stack_options(airflow, transport)]
    if routes is not None:
        try:
            check_routes_file(routes)
        except RoutesFileError as error:
            fail(str(error), code=2)
        arguments += ["--routes", str(routes.resolve())]
    _devstack(arguments)


@app.command()
def down() -> None:
    """Stop the local stack `up` started (as `make down`)."""
    _devstack(["down"])


@app.command()
def demo(
    airflow: AirflowVersion = "3",
    transport: Transport = None,
    logs: Annotated[
        bool, typer.Option("--logs", help="show the functions' JSON logs on the console too")
    ] = False,
) -> None:
    """Start a stack, drop files in S3, show the runs they started, stop it (as `make demo`)."""
    _devstack(["demo", *_stack_options(airflow, transport), *(["--logs"] if logs else [])])


@app.command()
def status(
    state_file: StateFile = UP_STATE,
    as_json: Annotated[bool, typer.Option("--json", help="the resources as JSON")] = False,
) -> None:
    """Whether a local stack runs, and its endpoints, names and login; exit 1 if none runs."""
    state = read_state(state_file)
    if state is None:
        console.print("no local stack is running (`dagtrigger local up` or `make up` starts one)")
        raise typer.Exit(code=1)
    pid = running_stack_pid(state)
    if pid is None:
        console.print(
            f"no local stack is running: {state_file} is left from one that stopped "
            "(`dagtrigger local down` cleans up)"
        )
        raise typer.Exit(code=1)
    if not state.get("ready"):
        console.print(f"a local stack is starting (process group {pid}): ask again in a moment")
        raise typer.Exit(code=1)
    resources = state.get("resources")
    if not isinstance(resources, dict):
        fail(f"{state_file} has no resources: restart the stack with `make down` and `make up`")
    if as_json:
        print_json(resources)
        return
    version = state.get("airflow_version", "?")
    console.print(f"local stack running (process group {pid}, Apache Airflow {version})")
    console.print(resources_table(resources, function_log=state.get("function_log")))


@app.command("requests")
def show_requests(
    limit: Annotated[int, typer.Option(min=1, max=500, help="how many of the newest to show")] = 50,
    state_file: StateFile = UP_STATE,
) -> None:
    """What the local MWAA emulator answered: control-plane calls and CLI commands."""
    if not print_requests(console, read_state(state_file), limit=limit):
        raise typer.Exit(code=1)


def _stack_options(airflow: str, transport: TransportKind | None) -> list[str]:
    return [
        "--airflow",
        airflow,
        *(["--transport", transport.value] if transport else []),
    ]


def _devstack(arguments: list[str]) -> None:
    """Run ``python -m devstack ARGUMENTS`` in this checkout; its exit code is ours."""
    completed = subprocess.run(  # noqa: S603 - our own interpreter and module, fixed arguments
        [sys.executable, "-m", "devstack", *arguments], cwd=REPO_ROOT, check=False
    )
    if completed.returncode != 0:
        raise typer.Exit(code=completed.returncode)
