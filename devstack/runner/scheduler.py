"""Fire the template's schedules on time (moto stores schedules but never fires them).

Expressions are EventBridge's: ``rate(5 minutes)``, ``cron(min hour dom month dow year)`` with
``?``, ``L``, ``W`` and ``#`` (day of week 1-7 = SUN-SAT), and ``at(yyyy-mm-ddThh:mm:ss)``,
evaluated in the schedule's ``ScheduleExpressionTimezone`` with the Scheduler's daylight-saving
rules (a skipped local time is not invoked, a repeated one once). Cron arithmetic is croniter's.
A rate schedule starts at its StartDate, or at once.

Delivery follows the services: EventBridge Scheduler (``ScheduleV2``) sends the schedule's
``Input`` verbatim after substituting its context attributes (``<aws.scheduler.schedule-arn>``,
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
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from devstack.runner.invoke import InvocationResult
from devstack.runner.template import ScheduleSpec

logger = logging.getLogger(__name__)

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_UNIT_SECONDS: Final = {"minute": 60, "hour": 3600, "day": 86400}
_DAY_NAMES: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_MAX_CRON_STEPS: Final = 100_000


class ScheduleExpressionError(ValueError):
    """A schedule expression the services would refuse; the message says which part."""


@dataclass(frozen=True)
class RateExpression:
    interval: timedelta


@dataclass(frozen=True)
class CronExpression:
    croniter_fields: str
    years: frozenset[int] | None


@dataclass(frozen=True)
class AtExpression:
    local_time: datetime


Expression = RateExpression | CronExpression | AtExpression


def parse_expression(expression: str) -> Expression:
    """Parse an EventBridge schedule expression."""
    text = expression.strip()
    if match := _RATE.match(text):
        return _rate(int(match.group(1)), match.group(2), text)
    if match := _CRON.match(text):
        return _cron(match.group(1), text)
    if match := _AT.match(text):
        return AtExpression(datetime.fromisoformat(match.group(1)))
    raise ScheduleExpressionError(
        f"{expression!r}: expected rate(N unit), cron(6 fields) or at(yyyy-mm-ddThh:mm:ss)"
    )


def next_fire_times(
    expression: str,
    *,
    after: datetime,
    count: int,
    timezone: str = "UTC",
    anchor: datetime | None = None,
) -> list[datetime]:
    """The next `count` fire times strictly after `after`, as aware UTC datetimes.

    `anchor` is when a rate schedule starts counting (its StartDate, or its creation).
    """
    zone = _zone(timezone)
    parsed = parse_expression(expression)
    after = after.astimezone(UTC)
    if isinstance(parsed, AtExpression):
        at = parsed.local_time.replace(tzinfo=zone).astimezone(UTC)
        return [at] if at > after and count > 0 else []
    if isinstance(parsed, RateExpression):
        start = (anchor or after).astimezone(UTC)
        steps = max(0, int((after - start) / parsed.interval) + 1) if after >= start else 0
        return [start + parsed.interval * (steps + index) for index in range(count)]
    return _cron_times(parsed, after.astimezone(zone), count)


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


def _rate(value: int, unit: str, text: str) -> RateExpression:
    singular = unit.rstrip("s")
    if value < 1:
        raise ScheduleExpressionError(f"{text!r}: the value must be a positive integer")
    if (value == 1) != (unit == singular):
        raise ScheduleExpressionError(
            f"{text!r}: use the singular unit for 1 and the plural otherwise (rate(1 hour))"
        )
    return RateExpression(timedelta(seconds=value * _UNIT_SECONDS[singular]))


def _cron(body: str, text: str) -> CronExpression:
    fields = body.split()
    if len(fields) != 6:
        raise ScheduleExpressionError(
            f"{text!r}: cron needs 6 fields (minutes hours day-of-month month day-of-week year)"
        )
    minutes, hours, day_of_month, month, day_of_week, year = fields
    if (day_of_month == "?") == (day_of_week == "?"):
        raise ScheduleExpressionError(
            f"{text!r}: exactly one of day-of-month and day-of-week must be '?'"
        )
    if "LW" in day_of_month.upper():
        raise ScheduleExpressionError(f"{text!r}: 'LW' is not supported by the local stack")
    converted = " ".join(
        [
            minutes,
            hours,
            "*" if day_of_month == "?" else day_of_month,
            month,
            "*" if day_of_week == "?" else _day_of_week(day_of_week, text),
        ]
    )
    try:
        croniter(converted)
    except (ValueError, KeyError) as error:
        raise ScheduleExpressionError(f"{text!r}: {error}") from error
    return CronExpression(converted, _years(year, text))


def _day_of_week(field_text: str, text: str) -> str:
    """EventBridge numbers days 1-7 from Sunday; croniter 0-6. Names and L/# are translated."""

    def number(token: str) -> str:
        if token.upper() in _DAY_NAMES or token in ("*", "?"):
            return token
        if not token.isdigit() or not 1 <= int(token) <= 7:
            raise ScheduleExpressionError(f"{text!r}: day-of-week {token!r} is not 1-7 or SUN-SAT")
        return str(int(token) - 1)

    def convert(part: str) -> str:
        if part.upper().endswith("L") and len(part) > 1:
            return "L" + number(part[:-1])
        if "#" in part:
            day, nth = part.split("#", 1)
            return f"{number(day)}#{nth}"
        step = ""
        if "/" in part:
            part, increment = part.split("/", 1)
            step = f"/{increment}"
        return "-".join(number(token) for token in part.split("-")) + step

    return ",".join(convert(part) for part in field_text.split(","))


def _years(field_text: str, text: str) -> frozenset[int] | None:
    if field_text == "*":
        return None
    years: set[int] = set()
    try:
        for part in field_text.split(","):
            span, _, step = part.partition("/")
            first, _, last = span.partition("-")
            low = int(first) if first != "*" else 1970
            high = int(last) if last else (2199 if step or first == "*" else low)
            years.update(range(low, high + 1, int(step) if step else 1))
    except ValueError:
        raise ScheduleExpressionError(f"{text!r}: year field {field_text!r} is not valid") from None
    return frozenset(years)


def _cron_times(parsed: CronExpression, after_local: datetime, count: int) -> list[datetime]:
    """Cron times on the local wall clock, with EventBridge Scheduler's daylight-saving rules.

    The iteration runs on naive wall-clock times, so each local time comes up once: a time the
    clocks skip (spring) is not invoked, a time the clocks repeat (autumn) is invoked once, at
    its first occurrence.
    """
    zone = after_local.tzinfo
    assert isinstance(zone, ZoneInfo)
    iterator = croniter(parsed.croniter_fields, after_local.replace(tzinfo=None))
    times: list[datetime] = []
    for _ in range(_MAX_CRON_STEPS):
        if len(times) >= count:
            break
        wall: datetime = iterator.get_next(datetime)
        if parsed.years is not None and wall.year > max(parsed.years):
            break
        if parsed.years is not None and wall.year not in parsed.years:
            continue
        moment = wall.replace(tzinfo=zone, fold=0)
        if moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall:
            continue  # skipped by the clocks going forward
        times.append(moment.astimezone(UTC))
    return times


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleExpressionError(f"unknown time zone {name!r}") from None


def _iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_optional(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
