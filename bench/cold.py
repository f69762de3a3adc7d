"""Cold start figures from bench/cold_start.py, run as it is run by hand (a subprocess)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

from devstack.paths import REPO_ROOT


@dataclass(frozen=True)
class ColdStart:
    name: str
    median_ms: float
    p90_ms: float
    rss_mib: float


def run_cold_start(rounds: int) -> tuple[list[ColdStart], str]:
    """Its rows, and its printed table."""
    answer = subprocess.run(
        [sys.executable, "-m", "bench.cold_start", "--rounds", str(rounds)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if answer.returncode != 0:
        raise RuntimeError(f"bench.cold_start failed:\n{answer.stderr[-3000:]}")
    return parse_table(answer.stdout), answer.stdout.strip()


def parse_table(text: str) -> list[ColdStart]:
    """The rows of cold_start's markdown table, found by its column names."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    if len(lines) < 3:
        raise ValueError(f"no table in bench.cold_start's output:\n{text}")
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]

    def column(*names: str) -> int:
        for index, cell in enumerate(header):
            if any(name in cell.lower() for name in names):
                return index
        raise ValueError(f"no column {names} in {header}")

    name_at, median_at = column("handler"), column("median")
    p90_at, rss_at = column("p90"), column("rss")
    rows = []
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows.append(
            ColdStart(
                cells[name_at],
                _number(cells[median_at]),
                _number(cells[p90_at]),
                _number(cells[rss_at]),
            )
        )
    return rows


def _number(cell: str) -> float:
    return float(cell.rstrip("x").replace(",", "") or "nan")
