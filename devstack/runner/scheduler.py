"""Fire the template's schedules on time (moto stores schedules but never fires them).

Fire times come from `devstack.runner.schedule_expressions`. Delivery follows the services:
EventBridge Scheduler (``ScheduleV2``) sends the schedule's ``Input`` verbatim after
substituting its context attributes (``<aws.scheduler.schedule-arn>``,
``<aws.scheduler.scheduled-time>``, ``<aws.scheduler.execution-id>``,
``<aws.scheduler.attempt-number>``); an EventBridge rule (``Schedule``) sends its ``Input``
or a "Scheduled Event". Both invoke Lambda asynchronously, so a function error is retried by
Lambda (``EventInvokeConfig.MaximumRetryAttempts``, 2 by default) with the same event, and
then goes to the function's ``DeadLetterQueue`` if it has one. AWS waits about 1 and 2
minutes between those retries; the runner waits `retry_delays` (short by default). The
Scheduler's own RetryPolicy and DeadLetterConfig cover failures to *deliver* to Lambda, which
do not happen locally. A flexible time window fires at its start.

With `StoredSchedules`, the ``ScheduleV2`` schedules fire as moto's Scheduler holds them, re-read
every few seconds: the template's own (which the runner stores when it provisions) and those
created, changed or deleted at run time (e.g. through the HTTP API), as AWS fires whatever
Scheduler holds. Without it, the template's schedules fire as the template declares them.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from devstack.runner.invoke import InvocationResult
from devstack.runner.schedule_expressions import ScheduleExpressionError, next_fire_times
from devstack.runner.template import ScheduleSpec

logger = logging.getLogger(__name__)


def scheduler_input(
    spec: ScheduleSpec, *, scheduled_time: datetime, execution_id: str, attempt: int
) -> Any:
    """The event EventBridge Scheduler sends for `spec` (Input with context attributes filled)."""
    if spec.input is None:
        return {}
    text = (
        spec.input.replace("<aws.scheduler.schedule-arn>", spec.arn)
        .replace("<aws.scheduler.scheduled-time>", _iso_z(scheduled_time))
        .replace("<aws.scheduler.execution-id>", execution_id)
        .replace("<aws.scheduler.attempt-number>", str(attempt))
    )
    try:
        return json.loads(text)
    except ValueError as error:
        raise ScheduleExpressionError(
            f"schedule {spec.name}: Input is not JSON: {error}"
        ) from error


def rule_scheduled_event(
    spec: ScheduleSpec, *, scheduled_time: datetime, account_id: str, region: str
) -> Any:
    """The event an EventBridge rule sends for `spec` (its constant Input, or a Scheduled Event)."""
    if spec.input is not None:
        return json.loads(spec.input)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": _iso_z(scheduled_time),
        "region": region,
        "resources": [spec.arn],
        "detail": {},
    }


@dataclass(frozen=True)
class ScheduleFiring:
    """One scheduled delivery: the event sent and each Lambda attempt's result."""

    schedule_name: str
    scheduled_time: datetime
    event: Any
    attempts: tuple[InvocationResult, ...]
    dead_lettered: bool = False

    @property
    def succeeded(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].succeeded


@dataclass(frozen=True)
class ScheduledTarget:
    """A schedule and the function it invokes."""

    spec: ScheduleSpec
    function_logical_id: str
    maximum_retries: int
    dead_letter_queue_url: str | None = None
    #: when the schedule was created (a rate schedule without StartDate counts from then)
    created_at: datetime | None = None


def stored_schedule_spec(stored: Mapping[str, Any]) -> ScheduleSpec:
    """A schedule as EventBridge Scheduler's GetSchedule answers it."""
    target = stored["Target"]
    window = stored.get("FlexibleTimeWindow") or {}
    retry = target.get("RetryPolicy") or {}
    return ScheduleSpec(
        event_id=stored["Name"],
        kind="ScheduleV2",
        name=stored["Name"],
        group_name=stored.get("GroupName") or "default",
        arn=stored["Arn"],
        expression=stored["ScheduleExpression"],
        timezone=stored.get("ScheduleExpressionTimezone") or "UTC",
        input=target.get("Input"),
        enabled=stored.get("State", "ENABLED") == "ENABLED",
        flexible_window_minutes=(
            window.get("MaximumWindowInMinutes") if window.get("Mode") == "FLEXIBLE" else None
        ),
        maximum_retry_attempts=retry.get("MaximumRetryAttempts"),
        maximum_event_age_seconds=retry.get("MaximumEventAgeInSeconds"),
        dead_letter_arn=(target.get("DeadLetterConfig") or {}).get("Arn"),
        start_date=_iso_optional(stored.get("StartDate")),
        end_date=_iso_optional(stored.get("EndDate")),
    )


#: a stored schedule (GetSchedule's answer) as a target, or None if it invokes no known function
TargetOfStored = Callable[[Mapping[str, Any]], "ScheduledTarget | None"]


class StoredSchedules:
    """The schedules an EventBridge Scheduler API (moto's) holds now, as targets.

    Each `current()` lists every group's schedules and reads again only those created or
    modified since the last call; a schedule no longer listed is gone from the result.
    """

    def __init__(self, client: Callable[[], Any], target_of: TargetOfStored) -> None:
        self._client = client
        self._target_of = target_of
        #: schedule ARN -> (LastModificationDate, target)
        self._known: dict[str, tuple[Any, ScheduledTarget | None]] = {}

    def current(self) -> list[ScheduledTarget]:
        scheduler = self._client()
        known: dict[str, tuple[Any, ScheduledTarget | None]] = {}
        for page in scheduler.get_paginator("list_schedules").paginate():
            for summary in page.get("Schedules", []):
                arn, modified = summary["Arn"], summary.get("LastModificationDate")
                cached = self._known.get(arn)
                if cached is not None and cached[0] == modified:
                    known[arn] = cached
                    continue
                try:
                    stored = scheduler.get_schedule(
                        Name=summary["Name"], GroupName=summary.get("GroupName") or "default"
                    )
                except scheduler.exceptions.ResourceNotFoundException:
                    continue  # deleted since it was listed
                known[arn] = (modified, self._target_of(stored))
        self._known = known
        return [target for _, target in known.values() if target is not None]


InvokeFunction = Callable[[str, Any], InvocationResult]
SendDeadLetter = Callable[[str, Any, InvocationResult], None]


@dataclass
class ScheduleRunner:
    """Fires every enabled schedule at its times in a thread; `fire` delivers one on demand.

    `targets` are the template's schedules (`fire` finds them by name). With `stored`, the
    ``ScheduleV2`` ones among them fire as the Scheduler API holds them instead, read again at
    least every `refresh_seconds`.
    """

    targets: Sequence[ScheduledTarget]
    invoke: InvokeFunction
    send_dead_letter: SendDeadLetter
    account_id: str
    region: str
    retry_delays: Sequence[float] = (1.0, 2.0)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    stored: StoredSchedules | None = None
    refresh_seconds: float = 5.0
    firings: list[ScheduleFiring] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _started_at: datetime | None = None
    _last_stored: list[ScheduledTarget] = field(default_factory=list)
    _unreadable: set[str] = field(default_factory=set)  # ARNs of expressions it cannot read

    def target(self, schedule_name: str) -> ScheduledTarget:
        for target in self.targets:
            if target.spec.name == schedule_name:
                return target
        known = ", ".join(sorted(target.spec.name for target in self.targets)) or "none"
        raise KeyError(f"no schedule named {schedule_name!r} (schedules: {known})")

    def fire(self, schedule_name: str, scheduled_time: datetime | None = None) -> ScheduleFiring:
        """Deliver one schedule now, as if it fired at `scheduled_time` (default: now)."""
        return self.fire_target(self.target(schedule_name), scheduled_time)

    def fire_target(
        self, target: ScheduledTarget, scheduled_time: datetime | None = None
    ) -> ScheduleFiring:
        """Deliver `target` now (one of `targets` or not), as if it fired at `scheduled_time`."""
        when = (scheduled_time or self.clock()).astimezone(UTC).replace(microsecond=0)
        firing = self._deliver(target, when)
        self.firings.append(firing)
        return firing

    def start(self) -> None:
        self._started_at = self.clock()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="schedules", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        # Just before now, so that a rate schedule without StartDate fires at once, as AWS does.
        started = self.clock() - timedelta(microseconds=1)
        fired_until: dict[str, datetime] = {}  # schedule ARN -> the last time it fired for
        longest_wait = 60.0 if self.stored is None else self.refresh_seconds
        while not self._stop.is_set():
            upcoming = self._upcoming(self._timetable(), started, fired_until)
            if upcoming is None and self.stored is None:
                return
            delay = (
                longest_wait if upcoming is None else (upcoming[0] - self.clock()).total_seconds()
            )
            if delay > 0:
                # Woken at least every refresh, to see schedules created, changed or deleted.
                if self._stop.wait(min(delay, longest_wait)):
                    return
                continue
            assert upcoming is not None
            when, due = upcoming
            for target in due:
                fired_until[target.spec.arn] = when
                try:
                    self.firings.append(self._deliver(target, when))
                except Exception:
                    logger.exception("schedule %s failed to fire", target.spec.name)

    def _timetable(self) -> list[ScheduledTarget]:
        """The schedules to fire on time: the template's, or with `stored`, its rules and every
        schedule the Scheduler API holds (the last good answer if it cannot be read)."""
        if self.stored is None:
            return list(self.targets)
        try:
            self._last_stored = self.stored.current()
        except Exception as error:
            logger.warning("cannot read the stored schedules (%s); firing the last known", error)
        rules = [target for target in self.targets if target.spec.kind != "ScheduleV2"]
        return rules + self._last_stored

    def _upcoming(
        self,
        targets: Sequence[ScheduledTarget],
        started: datetime,
        fired_until: Mapping[str, datetime],
    ) -> tuple[datetime, list[ScheduledTarget]] | None:
        """The earliest next fire time among `targets`, and every target due then."""
        times: dict[datetime, list[ScheduledTarget]] = {}
        for target in targets:
            if not target.spec.enabled:
                continue
            start = _parse_optional(target.spec.start_date) or max(
                target.created_at or started, self._started_at or started
            )
            after = max(
                fired_until.get(target.spec.arn, started), start - timedelta(microseconds=1)
            )
            try:
                upcoming = next_fire_times(
                    target.spec.expression,
                    after=after,
                    count=1,
                    timezone=target.spec.timezone,
                    anchor=start,
                )
            except ScheduleExpressionError as error:
                if target.spec.arn not in self._unreadable:
                    logger.warning("schedule %s never fires here: %s", target.spec.name, error)
                    self._unreadable.add(target.spec.arn)
                continue
            end = _parse_optional(target.spec.end_date)
            if upcoming and (end is None or upcoming[0] <= end):
                times.setdefault(upcoming[0], []).append(target)
        if not times:
            return None
        earliest = min(times)
        return earliest, times[earliest]

    def _deliver(self, target: ScheduledTarget, when: datetime) -> ScheduleFiring:
        spec = target.spec
        if spec.kind == "ScheduleV2":
            event = scheduler_input(
                spec, scheduled_time=when, execution_id=str(uuid.uuid4()), attempt=1
            )
        else:
            event = rule_scheduled_event(
                spec, scheduled_time=when, account_id=self.account_id, region=self.region
            )
        attempts = [self.invoke(target.function_logical_id, event)]
        for delay in _delays(self.retry_delays, target.maximum_retries):
            if attempts[-1].succeeded or self._stop.wait(delay):
                break
            attempts.append(self.invoke(target.function_logical_id, event))
        dead_lettered = False
        if not attempts[-1].succeeded and target.dead_letter_queue_url:
            self.send_dead_letter(target.dead_letter_queue_url, event, attempts[-1])
            dead_lettered = True
        return ScheduleFiring(spec.name, when, event, tuple(attempts), dead_lettered)


def _delays(configured: Sequence[float], retries: int) -> Iterable[float]:
    for index in range(retries):
        yield configured[min(index, len(configured) - 1)] if configured else 0.0


def _iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_optional(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso_optional(value: datetime | str | None) -> str | None:
    """StartDate/EndDate as boto3 gives them (datetime) or as text, in ISO 8601."""
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()
