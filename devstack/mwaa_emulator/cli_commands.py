"""Which Airflow CLI commands MWAA's /aws_mwaa/cli runs, and how it splits the request body.

The body is one command line without the leading ``airflow``; MWAA splits it like a POSIX shell
line (``shlex.split``) and runs no shell. The allowlist follows the "Supported commands" table
of the MWAA user guide's "Apache Airflow CLI command reference" (awsdocs/amazon-mwaa-user-guide,
doc_source/airflow-cli-command-reference.md, Airflow v2 table), plus ``dags list``,
``dags list-import-errors`` and ``dags reserialize``, which later MWAA versions list as supported.
Commands that start servers or touch users, connections, pools or the database are refused.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

SUPPORTED_COMMANDS: frozenset[tuple[str, ...]] = frozenset(
    {
        ("cheat-sheet",),
        ("version",),
        *(
            ("dags", sub)
            for sub in (
                "delete",
                "list",
                "list-import-errors",
                "list-jobs",
                "list-runs",
                "next-execution",
                "pause",
                "report",
                "reserialize",
                "show",
                "state",
                "test",
                "trigger",
                "unpause",
            )
        ),
        *(("providers", sub) for sub in ("behaviours", "get", "hooks", "links", "list", "widgets")),
        ("roles", "create"),
        ("roles", "list"),
        *(
            ("tasks", sub)
            for sub in (
                "clear",
                "failed-deps",
                "list",
                "render",
                "state",
                "states-for-dag-run",
                "test",
            )
        ),
        *(("variables", sub) for sub in ("delete", "get", "list", "set")),
    }
)
# Options the guide lists as unsupported on otherwise supported commands.
FORBIDDEN_OPTIONS: dict[tuple[str, ...], frozenset[str]] = {
    ("dags", "show"): frozenset({"--save", "-s", "--imgcat"}),
    ("dags", "test"): frozenset({"--save-dagrun", "--show-dagrun"}),
}


class UnsupportedCliCommand(ValueError):
    """The body is empty, cannot be split, or names a command MWAA does not run."""


@dataclass(frozen=True)
class CliCommand:
    command: tuple[str, ...]
    argv: tuple[str, ...]


def parse_cli_command(body: str) -> CliCommand:
    """Split `body` as MWAA does and check it against the allowlist."""
    try:
        argv = tuple(shlex.split(body))
    except ValueError as error:  # e.g. "No closing quotation"
        raise UnsupportedCliCommand(f"cannot split the command line: {error}") from error
    if not argv:
        raise UnsupportedCliCommand("the request body holds no command")
    command = _command_of(argv)
    if command is None:
        raise UnsupportedCliCommand(f"command {' '.join(argv[:2])!r} is not supported on MWAA")
    forbidden = FORBIDDEN_OPTIONS.get(command, frozenset())
    used = sorted(forbidden.intersection(_option_names(argv)))
    if used:
        raise UnsupportedCliCommand(f"option {used[0]} of {' '.join(command)!r} is not supported")
    return CliCommand(command=command, argv=argv)


def _command_of(argv: tuple[str, ...]) -> tuple[str, ...] | None:
    for length in (1, 2):
        if tuple(argv[:length]) in SUPPORTED_COMMANDS:
            return tuple(argv[:length])
    return None


def _option_names(argv: tuple[str, ...]) -> set[str]:
    return {arg.split("=", 1)[0] for arg in argv if arg.startswith("-")}
