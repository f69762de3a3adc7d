"""The fault matrix's table: printed at the end of the run, and written as Markdown for CI logs."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from devstack.reliability.accounting import ScenarioRow

COLUMNS = (
    "scenario",
    "events in",
    "runs started",
    "duplicates",
    "lost",
    "final states",
    "time to drain",
    "note",
)
TITLE = "dagtrigger fault matrix"


def _cells(row: ScenarioRow) -> tuple[str, ...]:
    return (
        row.scenario,
        str(row.events_in),
        str(row.runs_started),
        str(row.duplicates),
        str(row.lost),
        row.final_states_text(),
        row.drain_text(),
        row.note,
    )


def render_text(rows: Sequence[ScenarioRow], *, width: int = 160) -> str:
    """The table as a terminal shows it."""
    table = Table(title=TITLE, show_lines=False)
    for column in COLUMNS:
        numeric = column in {"events in", "runs started", "duplicates", "lost", "time to drain"}
        table.add_column(column, justify="right" if numeric else "left", overflow="fold")
    for row in rows:
        style = "red" if row.lost or row.duplicates or row.drain_seconds is None else None
        table.add_row(*_cells(row), style=style)
    buffer = io.StringIO()
    Console(file=buffer, width=width, force_terminal=False, color_system=None).print(table)
    return buffer.getvalue()


def render_markdown(rows: Sequence[ScenarioRow], *, footnote: str = "") -> str:
    def escaped(cell: str) -> str:
        return cell.replace("|", "\\|").replace("\n", " ")

    lines = [
        f"# {TITLE}",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(escaped(cell) for cell in _cells(row)) + " |" for row in rows]
    if footnote:
        lines += ["", footnote]
    return "\n".join(lines) + "\n"


def write_markdown(rows: Sequence[ScenarioRow], path: Path, *, footnote: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(rows, footnote=footnote), encoding="utf-8")
