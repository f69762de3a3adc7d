"""Figures for the bench table: medians, percentiles, ratios, verdicts, and the markdown table.

Pure functions, no I/O: tests/unit/bench checks them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], p: float) -> float:
    """The `p`-th percentile (0..100) by linear interpolation between closest ranks.

    Matches numpy's default ("linear"); one value is its own every percentile.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"p must be within 0..100, got {p}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return float(ordered[low])
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


def ratio(value: float, reference: float) -> float | None:
    """value / reference, or None when the reference is zero (no ratio to show)."""
    if reference == 0:
        return None
    return value / reference


def format_ratio(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}x"


@dataclass(frozen=True)
class Target:
    """At most (or at least) `limit`: `value` meets it or misses by a stated margin."""

    limit: float
    at_most: bool = True

    def met(self, value: float) -> bool:
        return value <= self.limit if self.at_most else value >= self.limit

    def verdict(self, value: float | None, unit: str = "") -> str:
        """'met' or 'MISSED by <absolute> (<percent>)'."""
        if value is None:
            return "not measured"
        if self.met(value):
            return "met"
        excess = value - self.limit if self.at_most else self.limit - value
        percent = f" ({excess / self.limit * 100:.0f}%)" if self.limit else ""
        return f"MISSED by {_number(excess)}{unit}{percent}"

    def describe(self, unit: str = "") -> str:
        return f"{'≤' if self.at_most else '≥'} {_number(self.limit)}{unit}"


def _number(value: float) -> str:
    if value == int(value) and abs(value) >= 1:
        return str(int(value))
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table; pipes inside cells are escaped, None shows as an empty cell."""
    width = len(header)
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + " --- |" * width]
    for row in rows:
        if len(row) != width:
            raise ValueError(f"row has {len(row)} cells, the header {width}: {row!r}")
        lines.append("| " + " | ".join(_cell(cell) for cell in row) + " |")
    return "\n".join(lines)


def _cell(value: object) -> str:
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def mib(size_bytes: float) -> str:
    if size_bytes < 2**20:
        return f"{size_bytes / 2**10:.1f} KiB"
    return f"{size_bytes / 2**20:.1f} MiB"
