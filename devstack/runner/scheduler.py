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
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
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


InvokeFunction = Callable[[str, Any], InvocationResult]
SendDeadLetter = Callable[[str, Any, InvocationResult], None]


@dataclass
class ScheduleRunner:
    """Fires every enabled schedule at its times in a thread; `fire` delivers one on demand."""

    targets: Sequence[ScheduledTarget]
    invoke: InvokeFunction
    send_dead_letter: SendDeadLetter
    account_id: str
    region: str
    retry_delays: Sequence[float] = (1.0, 2.0)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    firings: list[ScheduleFiring] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _started_at: datetime | None = None

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
        after = self.clock() - timedelta(microseconds=1)
        while not self._stop.is_set():
            upcoming = self._upcoming(after)
            if upcoming is None:
                return
            when, due = upcoming
            delay = (when - self.clock()).total_seconds()
            if delay > 0 and self._stop.wait(min(delay, 60.0)):
                return
            if self.clock() < when:
                continue
            for target in due:
                try:
                    self.firings.append(self._deliver(target, when))
                except Exception:
                    logger.exception("schedule %s failed to fire", target.spec.name)
            after = when

    def _upcoming(self, after: datetime) -> tuple[datetime, list[ScheduledTarget]] | None:
        times: dict[datetime, list[ScheduledTarget]] = {}
        for target in self.targets:
            if not target.spec.enabled:
                continue
            start = _parse_optional(target.spec.start_date) or self._started_at
            upcoming = next_fire_times(
                target.spec.expression,
                after=max(after, start - timedelta(microseconds=1)) if start else after,
                count=1,
                timezone=target.spec.timezone,
                anchor=start,
            )
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
