"""What every command prints with: one console, coloured statuses, one-line errors."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

# Wide enough for run ids when the output is a file or a CI log (rich assumes 80 columns).
console = Console(width=None if sys.stdout.isatty() else 200)
errors = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

STATUS_STYLES = {
    "RECEIVED": "cyan",
    "TRIGGERED": "blue",
    "EVENT_CREATED": "green",
    "SET_OPEN": "cyan",
    "SET_COMPLETE": "green",
    "IN_SET": "blue",
    "LATE": "yellow",
    "RUNNING": "bright_blue",
    "SUCCESS": "green",
    "FAILED": "red",
    "TRIGGER_FAILED": "bold red",
    "REJECTED": "yellow",
    "IGNORED": "dim",
    "UNKNOWN": "magenta",
}


def styled_status(status: str) -> str:
    """``status`` as rich markup in its colour."""
    style = STATUS_STYLES.get(status, "white")
    return f"[{style}]{status}[/{style}]"


def fail(message: str, *, code: int = 1) -> NoReturn:
    """Print ``message`` as one line on stderr and exit with ``code`` (never a traceback)."""
    # The message is text, never markup: "[a-z]" in a pattern must print as it is.
    errors.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=code)


def print_json(value: Any) -> None:
    """``value`` as JSON on stdout, for scripts (no colours, no wrapping)."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")
