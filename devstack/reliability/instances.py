"""Lambda execution environments as processes: concurrent, killable, with their own logs.

The runner (`devstack.runner`) calls every handler in its own process, one invocation at a time.
For the fault matrix a function must instead behave as it does in Lambda: several invocations
at once in separate processes, each one able to die at a chosen point (`kill_points`) with its
work half done, and its output (logs, EMF metrics) kept per environment.

`InstancePool` is that for one function: up to ``max_instances`` processes
(`instance_main`), reused while warm, replaced when one dies. Routed with
``LambdaRunner.route_invocations``, it receives the function's invocations from the SQS pollers,
the HTTP API and the schedules, as Lambda would.

    pool = InstancePool.for_function(runner, "S3EventsFunction", log_dir=..., max_instances=2)
    runner.route_invocations("S3EventsFunction", pool.invoke)
    plan = pool.arm_kill(KillPoint.AFTER_CLAIM, when=lambda event: "sales/a.csv" in str(event))
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.processes import child_env
from devstack.reliability.kill_points import KILLED_AT_POINT_EXIT_STATUS, KillPoint
from devstack.runner import LambdaRunner
from devstack.runner.invoke import InvocationResult
from devstack.runner.reply_channel import TIMED_OUT, ReplyChannel, send_line
from devstack.runner.template import FunctionSpec

#: time for a cold start (the handler's import) before the instance counts as broken
INIT_TIMEOUT_SECONDS = 60.0
_STOP_SECONDS = 5.0


class InstanceError(RuntimeError):
    """An execution environment could not start (its log's tail says why)."""


@dataclass
class KillPlan:
    """Kill the next invocation for which `when(event)` holds, at `point`."""

    point: KillPoint
    when: Callable[[Any], bool]
    fired: threading.Event = field(default_factory=threading.Event)
    result: InvocationResult | None = None

    def wait(self, timeout: float) -> InvocationResult:
        if not self.fired.wait(timeout):
            raise TimeoutError(f"no invocation reached kill point {self.point} in {timeout:g} s")
        assert self.result is not None
        return self.result


#: how Lambda reports an execution environment that ended mid-invocation
PROCESS_ENDINGS = frozenset({"Runtime.ExitError", "Sandbox.Timedout"})


def _failed_before_its_point(result: InvocationResult) -> bool:
    """The armed invocation raised its own error: the process did not end, so it never got
    to its kill point."""
    return result.error is not None and result.error.get("errorType") not in PROCESS_ENDINGS


@dataclass(frozen=True)
class InvocationRecord:
    """One invocation a pool ran: when, where, with what event, and what came of it."""

    function_logical_id: str
    instance: int
    started: float  # time.monotonic()
    ended: float
    event: Any
    result: InvocationResult
    kill_point: KillPoint | None = None


class FunctionInstance:
    """One execution environment: a child process that serves one invocation at a time."""

    def __init__(
        self, spec: FunctionSpec, env: Mapping[str, str], *, log_path: Path, number: int
    ) -> None:
        self.spec = spec
        self.number = number
        self.log_path = log_path
        self._env = dict(env)
        self._popen: subprocess.Popen[bytes] | None = None
        self._replies: ReplyChannel | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def is_alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> None:
        """Start the process and wait for its cold start (the handler's import)."""
        reply_read, reply_write = os.pipe()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.log_path.open("ab") as log:
                self._popen = subprocess.Popen(
                    [sys.executable, "-m", "devstack.reliability.instance_main", str(reply_write)],
                    env=child_env({**self._env, "PYTHONUNBUFFERED": "1"}),
                    stdin=subprocess.PIPE,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=(reply_write,),
                    start_new_session=True,
                )
        finally:
            os.close(reply_write)
        self._replies = ReplyChannel(reply_read)
        self._send({"function": _spec_fields(self.spec)})
        answer = self._receive(time.monotonic() + INIT_TIMEOUT_SECONDS)
        if not isinstance(answer, dict) or not answer.get("ready"):
            detail = answer.get("init_error") if isinstance(answer, dict) else str(answer)
            self.stop()
            raise InstanceError(
                f"{self.spec.logical_id} instance {self.number} failed its cold start: {detail}\n"
                f"{self.log_tail()}"
            )

    def invoke(
        self, event: Any, *, request_id: str, kill_at: KillPoint | None = None
    ) -> InvocationResult:
        """Run one invocation; a process that dies or outlives the function's timeout is gone
        afterwards (Lambda's Runtime.ExitError or Sandbox.Timedout)."""
        started = time.monotonic()
        timeout = float(self.spec.timeout_seconds)
        self._send(
            {
                "request_id": request_id,
                "event": event,
                "kill_at": str(kill_at) if kill_at else None,
                "timeout_seconds": timeout,
            }
        )
        answer = self._receive(started + timeout)
        duration = time.monotonic() - started
        logical_id = self.spec.logical_id
        if isinstance(answer, dict):
            if "error" in answer:
                return InvocationResult(logical_id, request_id, None, answer["error"], duration)
            return InvocationResult(logical_id, request_id, answer.get("payload"), None, duration)
        if answer is TIMED_OUT:
            self.kill()
            error = {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"Task timed out after {timeout:.2f} seconds",
            }
        else:
            error = {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: "
                f"{self._exit_description()}",
            }
        return InvocationResult(logical_id, request_id, None, error, duration)

    def kill(self) -> None:
        if self._popen is not None and self._popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._popen.pid, signal.SIGKILL)
            self._popen.wait()

    def stop(self) -> None:
        """End of input ends the process; kill it if it does not end by itself."""
        if self._popen is not None:
            with contextlib.suppress(OSError, ValueError):
                assert self._popen.stdin is not None
                self._popen.stdin.close()
            try:
                self._popen.wait(timeout=_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._replies is not None:
            self._replies.close()
            self._replies = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "".join(self.log_path.read_text(errors="replace").splitlines(True)[-lines:])
        except FileNotFoundError:
            return ""

    def _exit_description(self) -> str:
        assert self._popen is not None
        status = self._popen.wait()
        if status < 0:
            return f"signal {-status}"
        suffix = " (kill point)" if status == KILLED_AT_POINT_EXIT_STATUS else ""
        return f"exit status {status}{suffix}"

    def _send(self, document: Mapping[str, Any]) -> None:
        assert self._popen is not None
        send_line(self._popen.stdin, document)

    def _receive(self, deadline: float) -> dict[str, Any] | str:
        assert self._replies is not None
        return self._replies.receive(deadline)


class InstancePool:
    """Execution environments of one function, started on demand up to `max_instances`."""

    def __init__(
        self,
        spec: FunctionSpec,
        env: Mapping[str, str],
        *,
        log_dir: Path,
        max_instances: int,
    ) -> None:
        if max_instances < 1:
            raise ValueError(f"max_instances must be at least 1, got {max_instances}")
        self.spec = spec
        self.max_instances = max_instances
        self._env = dict(env)
        self._log_dir = log_dir
        self._idle: list[FunctionInstance] = []
        self._all: list[FunctionInstance] = []
        self._started = 0
        self._condition = threading.Condition()
        self._plans: list[KillPlan] = []
        self._records: list[InvocationRecord] = []
        self._stopped = False

    @classmethod
    def for_function(
        cls, runner: LambdaRunner, function_logical_id: str, *, log_dir: Path, max_instances: int
    ) -> InstancePool:
        return cls(
            runner.template.function(function_logical_id),
            runner.function_environment(function_logical_id),
            log_dir=log_dir,
            max_instances=max_instances,
        )

    # -- invocations ---------------------------------------------------------------------------

    def invoke(self, event: Any) -> InvocationResult:
        """Run one invocation on a free instance (waiting for one when all are busy)."""
        wire_event = json.loads(json.dumps(event))
        plan = self._take_plan(wire_event)
        point = plan.point if plan else None
        instance = self._acquire()
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        try:
            result = instance.invoke(wire_event, request_id=request_id, kill_at=point)
        finally:
            self._release(instance)
        record = InvocationRecord(
            self.spec.logical_id,
            instance.number,
            started,
            time.monotonic(),
            wire_event,
            result,
            point,
        )
        with self._condition:
            self._records.append(record)
        if plan is not None and _failed_before_its_point(result):
            # It ended on its own error (a trigger that failed under load) before reaching the
            # point: the event's next delivery carries the point instead.
            with self._condition:
                self._plans.append(plan)
        elif plan is not None:
            plan.result = result
            plan.fired.set()
        return result

    def arm_kill(self, point: KillPoint, *, when: Callable[[Any], bool]) -> KillPlan:
        """Kill the next invocation whose event satisfies `when`, at `point`."""
        plan = KillPlan(point, when)
        with self._condition:
            self._plans.append(plan)
        return plan

    def prewarm(self, count: int) -> None:
        """Have `count` instances running, the missing ones started side by side (Lambda's
        provisioned concurrency, in effect)."""
        with self._condition:
            missing = max(0, min(count, self.max_instances) - self._started)
            self._started += missing
        if not missing:
            return
        with ThreadPoolExecutor(max_workers=missing) as starters:
            starts = [starters.submit(self._start_instance) for _ in range(missing)]
        fresh = [start.result() for start in starts if start.exception() is None]
        errors = [start.exception() for start in starts if start.exception() is not None]
        with self._condition:
            self._idle.extend(fresh)
            self._all.extend(fresh)
            self._started -= len(errors)
            self._condition.notify_all()
        if errors:
            raise InstanceError(f"{len(errors)} of {missing} instances failed: {errors[0]}")

    @property
    def records(self) -> list[InvocationRecord]:
        with self._condition:
            return list(self._records)

    def log_paths(self) -> list[Path]:
        with self._condition:
            return [instance.log_path for instance in self._all]

    def log_lines(self) -> Iterator[str]:
        for path in self.log_paths():
            with contextlib.suppress(FileNotFoundError):
                yield from path.read_text(errors="replace").splitlines()

    def metrics(self) -> dict[str, float]:
        """The EMF metrics every instance of this function published: name -> total value."""
        return emf_metric_totals(self.log_lines())

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            instances = list(self._all)
            self._idle.clear()
            self._condition.notify_all()
        for instance in instances:
            instance.stop()

    def live_pids(self) -> list[int]:
        with self._condition:
            return [i.pid for i in self._all if i.pid is not None and i.is_alive()]

    # -- internals -----------------------------------------------------------------------------

    def _take_plan(self, event: Any) -> KillPlan | None:
        with self._condition:
            for plan in self._plans:
                if plan.when(event):
                    self._plans.remove(plan)
                    return plan
        return None

    def _acquire(self) -> FunctionInstance:
        with self._condition:
            while True:
                if self._stopped:
                    raise InstanceError(f"the {self.spec.logical_id} pool is stopped")
                if self._idle:
                    return self._idle.pop()
                if self._started < self.max_instances:
                    self._started += 1
                    break
                self._condition.wait()
        try:
            instance = self._start_instance()
        except BaseException:
            with self._condition:
                self._started -= 1
                self._condition.notify_all()
            raise
        with self._condition:
            self._all.append(instance)
        return instance

    def _release(self, instance: FunctionInstance) -> None:
        with self._condition:
            if instance.is_alive() and not self._stopped:
                self._idle.append(instance)
            else:
                self._started -= 1
            self._condition.notify_all()
        if not instance.is_alive():
            instance.stop()  # reap it and close its pipe; a new one starts on demand

    def _start_instance(self) -> FunctionInstance:
        number = _next_number()
        instance = FunctionInstance(
            self.spec,
            self._env,
            log_path=self._log_dir / f"{self.spec.logical_id}-{number:03d}.log",
            number=number,
        )
        instance.start()
        return instance


_numbers = itertools.count(1)
_numbers_lock = threading.Lock()


def _next_number() -> int:
    with _numbers_lock:
        return next(_numbers)


def emf_metric_totals(lines: Iterable[str]) -> dict[str, float]:
    """Sum the metrics of CloudWatch embedded metric format documents found among log lines."""
    totals: dict[str, float] = {}
    for line in lines:
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        try:
            document = json.loads(line)
        except ValueError:
            continue
        directives = (document.get("_aws") or {}).get("CloudWatchMetrics") or []
        for directive in directives:
            for metric in directive.get("Metrics") or []:
                name = metric.get("Name")
                value = document.get(name)
                values = value if isinstance(value, list) else [value]
                numbers = [v for v in values if isinstance(v, int | float)]
                totals[name] = totals.get(name, 0.0) + sum(numbers)
    return totals


def _spec_fields(spec: FunctionSpec) -> dict[str, Any]:
    return {
        "logical_id": spec.logical_id,
        "function_name": spec.function_name,
        "arn": spec.arn,
        "code_uri": str(spec.code_uri),
        "handler": spec.handler,
        "runtime": spec.runtime,
        "timeout_seconds": spec.timeout_seconds,
        "memory_mb": spec.memory_mb,
        "environment": dict(spec.environment),
    }
