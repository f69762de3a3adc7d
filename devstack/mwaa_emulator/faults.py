"""Switchable faults per operation, for tests: errors, latency, outages; deterministic on request.

An operation is a control-plane operation name (``InvokeRestApi``, ``CreateCliToken``, ...) or
``cli`` for the web server's ``/aws_mwaa/cli``. A fault's ``error`` is an error shape name
(``ThrottlingException``, ``InternalServerException``, ``RestApiServerException``, ...) or a bare
HTTP status (e.g. 503: what a load balancer answers, with no AWS error type).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from devstack.mwaa_emulator.errors import ERROR_STATUS

CONTROL_PLANE_OPERATIONS = frozenset(
    {
        "CreateCliToken",
        "CreateEnvironment",
        "CreateWebLoginToken",
        "DeleteEnvironment",
        "GetEnvironment",
        "InvokeRestApi",
        "ListEnvironments",
    }
)
CLI_OPERATION = "cli"
OPERATIONS = CONTROL_PLANE_OPERATIONS | {CLI_OPERATION}

FaultError = str | int
Outage = tuple[float, float] | bool


@dataclass
class FaultSpec:
    """What goes wrong with one operation. `outage` is True or a (start, end) on the clock."""

    error: FaultError = "InternalServerException"
    error_rate: float = 0.0
    fail_next: int = 0
    latency_seconds: float = 0.0
    outage: Outage = False
    seed: int | None = None
    # Airflow's status carried by a RestApiClientException/RestApiServerException fault.
    rest_api_status: int | None = None
    _random: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.error = _checked_error(self.error)
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"error_rate must be within 0..1, got {self.error_rate!r}")
        if self.fail_next < 0 or self.latency_seconds < 0:
            raise ValueError("fail_next and latency_seconds must not be negative")
        if isinstance(self.outage, tuple) and not self.outage[0] <= self.outage[1]:
            raise ValueError(f"outage (start, end) must have start <= end, got {self.outage!r}")
        self._random = random.Random(self.seed)  # noqa: S311 - fault sampling, not security

    def in_outage(self, now: float) -> bool:
        if isinstance(self.outage, tuple):
            start, end = self.outage
            return start <= now < end
        return bool(self.outage)

    def should_fail(self, now: float) -> bool:
        if self.in_outage(now):
            return True
        if self.fail_next > 0:
            self.fail_next -= 1
            return True
        return self.error_rate > 0 and self._random.random() < self.error_rate


@dataclass(frozen=True)
class FaultDecision:
    """The fault to apply to one call: sleep first, then fail with `error` unless it is None."""

    latency_seconds: float
    error: FaultError | None
    rest_api_status: int | None = None


@dataclass(frozen=True)
class InjectedError:
    """The failure a fault imposes on one call: an error shape name or a bare HTTP status."""

    error: FaultError
    rest_api_status: int | None = None

    @property
    def http_status(self) -> int:
        return self.error if isinstance(self.error, int) else ERROR_STATUS[self.error]


class FaultInjector:
    def __init__(
        self, *, clock: Callable[[], float], sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._specs: dict[str, FaultSpec] = {}
        self._lock = threading.Lock()

    def set(self, operation: str, **settings: Any) -> FaultSpec:
        """Replace the fault of `operation` (see FaultSpec for the settings)."""
        spec = FaultSpec(**settings)
        with self._lock:
            self._specs[_checked_operation(operation)] = spec
        return spec

    def clear(self, operation: str | None = None) -> None:
        with self._lock:
            if operation is None:
                self._specs.clear()
            else:
                self._specs.pop(_checked_operation(operation), None)

    def decide(self, operation: str) -> FaultDecision | None:
        with self._lock:
            spec = self._specs.get(operation)
            if spec is None:
                return None
            failing = spec.should_fail(self._clock())
            return FaultDecision(
                latency_seconds=spec.latency_seconds,
                error=spec.error if failing else None,
                rest_api_status=spec.rest_api_status,
            )

    def inject(self, operation: str) -> InjectedError | None:
        """Sleep the operation's injected latency, then return its error if this call fails."""
        decision = self.decide(operation)
        if decision is None:
            return None
        if decision.latency_seconds:
            self._sleep(decision.latency_seconds)
        if decision.error is None:
            return None
        return InjectedError(decision.error, decision.rest_api_status)

    def describe(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {
                operation: {k: v for k, v in asdict(spec).items() if not k.startswith("_")}
                for operation, spec in self._specs.items()
            }

    def apply_json(self, payload: Mapping[str, Any]) -> FaultSpec:
        """Set a fault from the admin endpoint's JSON.

        ``{"operation": "InvokeRestApi", "error": "ThrottlingException", "error_rate": 1}``;
        ``outage`` is true or [start, end] on the emulator's clock, and ``outage_for_seconds``
        starts an outage now.
        """
        settings = dict(payload)
        operation = settings.pop("operation", None)
        if not isinstance(operation, str):
            raise ValueError("the fault needs an 'operation' string")
        duration = settings.pop("outage_for_seconds", None)
        if duration is not None:
            now = self._clock()
            settings["outage"] = (now, now + float(duration))
        elif isinstance(settings.get("outage"), list):
            start, end = settings["outage"]
            settings["outage"] = (float(start), float(end))
        known = {name for name in FaultSpec.__dataclass_fields__ if not name.startswith("_")}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"unknown fault settings {unknown}; known: {sorted(known)}")
        return self.set(operation, **settings)


def _checked_operation(operation: str) -> str:
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}; use one of {sorted(OPERATIONS)}")
    return operation


def _checked_error(error: FaultError) -> FaultError:
    if isinstance(error, str) and error.isdigit():
        error = int(error)
    if isinstance(error, bool) or not isinstance(error, str | int):
        raise ValueError(f"a fault's error is a shape name or an HTTP status, got {error!r}")
    if isinstance(error, int):
        if not 400 <= error <= 599:
            raise ValueError(f"a fault's HTTP status must be 4xx or 5xx, got {error}")
    elif error not in ERROR_STATUS:
        raise ValueError(
            f"unknown error {error!r}; use an HTTP status or one of {sorted(ERROR_STATUS)}"
        )
    return error
