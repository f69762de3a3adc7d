"""What became of each event of a scenario, counted where it lands, not where the code says.

An event is accounted for by one of: its DAG run(s) in Airflow, a record that ends it without a
run (REJECTED or IGNORED, with its reason), or its message in a dead-letter queue (kept, with an
alarm). An event with none of them when its scenario ends is lost, even if its message still
waits, invisible, in the queue: a scenario's deadline is part of what it checks. A run beyond
the first of one event is a duplicate.
Runs are found in Airflow by a value the event put into the run's conf (the object key, the
scheduled time, the commit), never through dagtrigger's own records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

#: the record statuses nothing more happens to
FINAL_STATUSES: Final = frozenset({"SUCCESS", "FAILED", "REJECTED", "IGNORED"})
#: final statuses that end an event without a run
WITHOUT_RUN: Final = frozenset({"REJECTED", "IGNORED"})


@dataclass(frozen=True)
class ScenarioEvent:
    """One event a scenario sent, and how to find what became of it."""

    source_key: str  # the ledger's source_key (s3://bucket/key, a schedule ARN, webhook:name)
    dag_id: str
    marker_key: str  # the conf key whose value names this event's runs and records
    marker: str

    def owns(self, conf: Any) -> bool:
        return isinstance(conf, Mapping) and str(conf.get(self.marker_key)) == self.marker


@dataclass
class EventFate:
    event: ScenarioEvent
    runs: int = 0
    statuses: list[str] = field(default_factory=list)
    dead_lettered: bool = False

    @property
    def accounted(self) -> bool:
        return self.runs > 0 or self.dead_lettered or any(s in WITHOUT_RUN for s in self.statuses)

    @property
    def settled(self) -> bool:
        """Accounted for, and every record of it final (a dead-lettered one waits for redrive)."""
        return (
            self.accounted
            and not self.dead_lettered
            and bool(self.statuses)
            and all(status in FINAL_STATUSES for status in self.statuses)
        )


@dataclass(frozen=True)
class ScenarioRow:
    """One line of the fault matrix's table."""

    scenario: str
    events_in: int
    runs_started: int
    duplicates: int
    lost: int
    final_states: Mapping[str, int]
    drain_seconds: float | None  # None: it did not drain before the deadline
    note: str = ""

    def final_states_text(self) -> str:
        return ", ".join(f"{status} {n}" for status, n in sorted(self.final_states.items())) or "-"

    def drain_text(self) -> str:
        return "not drained" if self.drain_seconds is None else f"{self.drain_seconds:.1f} s"


def fates(
    events: Sequence[ScenarioEvent],
    *,
    runs_by_dag: Mapping[str, Iterable[Mapping[str, Any]]],
    records_by_source: Mapping[str, Iterable[Mapping[str, Any]]],
    dead_letter_bodies: Iterable[str] = (),
) -> list[EventFate]:
    """Each event's runs, record statuses and dead-letter presence."""
    bodies = list(dead_letter_bodies)
    found = []
    for event in events:
        fate = EventFate(event)
        runs = runs_by_dag.get(event.dag_id, ())
        fate.runs = sum(1 for run in runs if event.owns(run.get("conf")))
        fate.statuses = [
            str(record.get("status"))
            for record in records_by_source.get(event.source_key, ())
            if event.owns(record.get("conf")) or _same_object(event, record)
        ]
        fate.dead_lettered = fate.runs == 0 and any(event.marker in body for body in bodies)
        found.append(fate)
    return found


def row(
    scenario: str,
    found: Sequence[EventFate],
    *,
    drain_seconds: float | None,
    note: str = "",
) -> ScenarioRow:
    statuses: Counter[str] = Counter(status for fate in found for status in fate.statuses)
    return ScenarioRow(
        scenario=scenario,
        events_in=len(found),
        runs_started=sum(fate.runs for fate in found),
        duplicates=sum(max(0, fate.runs - 1) for fate in found),
        lost=sum(1 for fate in found if not fate.accounted),
        final_states=dict(statuses),
        drain_seconds=drain_seconds,
        note=note,
    )


def _same_object(event: ScenarioEvent, record: Mapping[str, Any]) -> bool:
    """A record without a conf (a rejection) is the event's when its source is the event's
    alone: an S3 object's source key names one object."""
    return record.get("conf") is None and event.source_key.startswith("s3://")
