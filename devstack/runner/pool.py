"""Each function in execution environments of its own, as many at once as its concurrency allows.

Lambda runs every concurrent invocation of a function in an execution environment of its own (a
process with the function's variables and its own copy of every module), reuses an environment
while it is warm, and never runs more environments of a function at once than its concurrency
allows. The runner does the same (`ProcessInvoker`, the runner's default):

* an environment is a process (`devstack.runner.lambda_worker`) started with the function's
  variables; it imports the handler when it is started for an invocation (the cold start,
  logged with its duration) and then serves one invocation at a time, warm, until the runner
  stops;
* `FunctionPool` holds one function's environments: a free one is reused, a new one is started
  when all are busy and the function's limit allows it (`concurrency_limit`: its
  ``ReservedConcurrentExecutions``, else `default_concurrency`), and beyond the limit a call
  waits for one to be free. A synchronous call that asks to be throttled instead (the HTTP API's)
  gets Lambda's ``TooManyRequestsException`` at once when the function's reserved concurrency is
  all in use. Functions run beside one another, each within its own limit;
* an invocation that outlives the function's timeout is Lambda's ``Sandbox.Timedout``: its
  process is killed, and the next invocation starts a new one (a cold start). A process that
  dies during an invocation (a crash, ``sys.exit``, a signal) is ``Runtime.ExitError`` for that
  invocation, likewise replaced;
* what an environment writes to stdout and stderr is copied line by line to the runner's
  function log (`devstack.runner.function_logs`) under its function, as Lambda sends it to the
  function's log group.

An SQS event source's ``ScalingConfig.MaximumConcurrency`` is not a limit of the function: the
runner runs that many pollers of the queue (`devstack.runner.LambdaRunner`), each waiting for its
batch's invocation, so the source never has more batches in flight, as in Lambda.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from devstack.processes import child_env
from devstack.runner.function_logs import handler_output
from devstack.runner.invoke import InvocationResult, function_variables
from devstack.runner.reply_channel import TIMED_OUT, ReplyChannel, send_line
from devstack.runner.template import FunctionSpec

logger = logging.getLogger(__name__)
WORKER_SCRIPT: Final = Path(__file__).resolve().with_name("lambda_worker.py")
#: environments at once of a function without reserved concurrency (Lambda's account limit,
#: 1000, is no use on a laptop)
DEFAULT_CONCURRENCY: Final = 4
#: time for a cold start (the handler's import); Lambda allows 10 s, a busy 2-core machine more
INIT_TIMEOUT_SECONDS: Final = 60.0
_STOP_SECONDS: Final = 5.0


def concurrency_limit(spec: FunctionSpec, default: int = DEFAULT_CONCURRENCY) -> int:
    """The most environments of `spec` at once: its reserved concurrency, else `default`."""
    return spec.reserved_concurrency if spec.reserved_concurrency is not None else default


def throttled(spec: FunctionSpec, request_id: str) -> InvocationResult:
    """Lambda's answer to a synchronous call beyond the function's reserved concurrency."""
    return InvocationResult(
        spec.logical_id,
        request_id,
        error={
            "errorType": "TooManyRequestsException",
            "errorMessage": "Rate Exceeded.",
            "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
        },
    )


class ExecutionEnvironment:
    """One execution environment of a function: a `lambda_worker` process, one call at a time."""

    def __init__(self, spec: FunctionSpec, env: Mapping[str, str], *, number: int) -> None:
        self.spec = spec
        self.number = number
        self._env = dict(env)
        self._popen: subprocess.Popen[bytes] | None = None
        self._replies: ReplyChannel | None = None
        self._output: threading.Thread | None = None
        self._lock = threading.Lock()  # the process's start against `terminate`
        self._terminated = False

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def is_alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self, init_timeout: float = INIT_TIMEOUT_SECONDS) -> dict[str, Any] | None:
        """Start the process and import the handler (the cold start). None when it is ready,
        else Lambda's error document for the failed init (the process is gone then)."""
        reply_read, reply_write = os.pipe()
        try:
            with self._lock:
                if self._terminated:
                    os.close(reply_read)
                    return {"errorType": "ServiceException", "errorMessage": "the runner stopped"}
                self._popen = subprocess.Popen(
                    [sys.executable, "-P", str(WORKER_SCRIPT), str(reply_write)],
                    env=self._env,
                    cwd=self.spec.code_uri,  # LAMBDA_TASK_ROOT, as in Lambda
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    pass_fds=(reply_write,),
                    start_new_session=True,
                )
        except BaseException:
            os.close(reply_read)
            raise
        finally:
            os.close(reply_write)
        self._replies = ReplyChannel(reply_read)
        self._output = threading.Thread(
            target=self._copy_output,
            args=(self._popen.stdout,),
            name=f"log-{self.spec.logical_id}-{self.number}",
            daemon=True,
        )
        self._output.start()
        self._send({"function": _function_fields(self.spec)})
        answer = self._receive(time.monotonic() + init_timeout)
        if isinstance(answer, dict) and answer.get("ready"):
            logger.info(
                "cold start of %s (environment %d, pid %d) in %.2f s",
                self.spec.logical_id,
                self.number,
                self.pid,
                float(answer.get("init_seconds") or 0.0),
            )
            return None
        if isinstance(answer, dict) and isinstance(answer.get("init_error"), dict):
            error: dict[str, Any] = answer["init_error"]
        elif answer is TIMED_OUT:
            error = {
                "errorType": "Runtime.InitError",
                "errorMessage": f"the cold start took more than {init_timeout:g} seconds",
            }
        else:
            error = {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"Runtime exited during init: {self._exit_description()}",
            }
        self.stop()
        return error

    def invoke(self, event: Any, *, request_id: str) -> InvocationResult:
        """Run one invocation; a process that dies or outlives the function's timeout is gone
        afterwards (Lambda's ``Runtime.ExitError`` or ``Sandbox.Timedout``)."""
        started = time.monotonic()
        timeout = float(self.spec.timeout_seconds)
        self._send({"request_id": request_id, "event": event})
        answer = self._receive(started + timeout)
        duration = time.monotonic() - started
        logical_id = self.spec.logical_id
        if isinstance(answer, dict):
            error = answer.get("error")
            if error is not None:
                logger.warning(
                    "%s raised %s: %s",
                    logical_id,
                    error.get("errorType"),
                    error.get("errorMessage"),
                )
            return InvocationResult(logical_id, request_id, answer.get("payload"), error, duration)
        if answer is TIMED_OUT:
            self.kill()
            message = f"Task timed out after {timeout:.2f} seconds"
            error = {"errorType": "Sandbox.Timedout", "errorMessage": message}
        else:
            message = (
                f"RequestId: {request_id} Error: Runtime exited with error: "
                f"{self._exit_description()}"
            )
            error = {"errorType": "Runtime.ExitError", "errorMessage": message}
        # Lambda writes these to the function's log too.
        self._log_line(f"{_now()} {request_id} {message}")
        logger.warning("%s environment %d: %s", logical_id, self.number, message)
        return InvocationResult(logical_id, request_id, None, error, duration)

    def kill(self) -> None:
        if self._popen is not None and self._popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._popen.pid, signal.SIGKILL)
            self._popen.wait()

    def terminate(self, grace_seconds: float = _STOP_SECONDS) -> None:
        """End the process, from any thread, even while an invocation runs in it: end of input
        ends it (after that invocation, within `grace_seconds`), else it is killed. The
        invoking thread then gets its answer, or ``Runtime.ExitError``; a start not yet begun
        will not begin."""
        with self._lock:
            self._terminated = True
            popen = self._popen
        if popen is None:
            return
        with contextlib.suppress(OSError, ValueError):
            assert popen.stdin is not None
            popen.stdin.close()
        try:
            popen.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            self.kill()

    def stop(self, grace_seconds: float = _STOP_SECONDS) -> None:
        """`terminate`, then close the pipes: only from the thread that uses the environment
        (or when none does). Safe to call twice."""
        self.terminate(grace_seconds)
        if self._output is not None:
            self._output.join(timeout=_STOP_SECONDS)
            self._output = None
        if self._replies is not None:
            self._replies.close()
            self._replies = None

    # -- internals -----------------------------------------------------------------------------

    def _copy_output(self, stream: IO[bytes]) -> None:
        """Copy the process's output, a line at a time, to the function log (or the console)."""
        with stream:
            for raw in iter(stream.readline, b""):
                self._log_line(raw.decode("utf-8", errors="replace").rstrip("\n"))

    def _log_line(self, line: str) -> None:
        with handler_output(self.spec.logical_id):
            sys.stdout.write(line + "\n")

    def _exit_description(self) -> str:
        assert self._popen is not None
        try:
            status = self._popen.wait(timeout=_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            status = self._popen.wait()
        return f"signal: {signal.Signals(-status).name}" if status < 0 else f"exit status {status}"

    def _send(self, document: Mapping[str, Any]) -> None:
        assert self._popen is not None
        send_line(self._popen.stdin, document)

    def _receive(self, deadline: float) -> dict[str, Any] | str:
        assert self._replies is not None
        return self._replies.receive(deadline)


class FunctionPool:
    """The execution environments of one function: at most `limit` at once, started on demand."""

    def __init__(
        self,
        spec: FunctionSpec,
        env: Mapping[str, str],
        *,
        limit: int,
        init_timeout: float = INIT_TIMEOUT_SECONDS,
    ) -> None:
        self.spec = spec
        self.limit = limit
        self._env = dict(env)
        self._init_timeout = init_timeout
        self._condition = threading.Condition()
        self._idle: list[ExecutionEnvironment] = []
        self._all: list[ExecutionEnvironment] = []
        self._count = 0  # environments running or starting
        self._running = 0  # invocations in flight
        self._numbers = 0
        self._stopped = False
        #: the most invocations that ran at once, and the cold starts so far
        self.peak_running = 0
        self.cold_starts = 0

    @property
    def running(self) -> int:
        """Invocations in flight now."""
        with self._condition:
            return self._running

    def invoke(self, event: Any, *, throttle: bool = False) -> InvocationResult:
        """Run one invocation in a free environment, a new one if all are busy and the limit
        allows, else wait for one (or, with `throttle` and reserved concurrency, be throttled)."""
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        # Through JSON as in Lambda: an event it cannot serialise fails here, in the caller.
        wire_event = json.loads(json.dumps(event))
        acquired = self._acquire(throttle and self.spec.reserved_concurrency is not None)
        if acquired is None:
            logger.warning("%s throttled: %d running", self.spec.logical_id, self.limit)
            return throttled(self.spec, request_id)
        if isinstance(acquired, str):  # stopped
            return InvocationResult(
                self.spec.logical_id,
                request_id,
                error={"errorType": "ServiceException", "errorMessage": "the runner stopped"},
            )
        environment, cold = acquired
        try:
            if cold:
                error = environment.start(self._init_timeout)
                if error is not None:
                    logger.warning("%s: cold start failed: %s", self.spec.logical_id, error)
                    return InvocationResult(
                        self.spec.logical_id,
                        request_id,
                        error=error,
                        duration_seconds=time.monotonic() - started,
                    )
            return environment.invoke(wire_event, request_id=request_id)
        finally:
            self._release(environment)

    def pids(self) -> list[int]:
        with self._condition:
            return [e.pid for e in self._all if e.pid is not None and e.is_alive()]

    def stop(self) -> None:
        """Stop every environment (one still running an invocation is given a few seconds) and
        refuse later calls; every process is gone when this returns."""
        with self._condition:
            self._stopped = True
            idle = list(self._idle)
            busy = [environment for environment in self._all if environment not in idle]
            self._idle.clear()
            self._count -= len(idle)
            for environment in idle:
                self._all.remove(environment)
            self._condition.notify_all()
        for environment in idle:
            environment.stop()
        for environment in busy:
            environment.terminate()  # its invoking thread closes the rest when it returns

    # -- internals -----------------------------------------------------------------------------

    def _acquire(self, throttle: bool) -> tuple[ExecutionEnvironment, bool] | str | None:
        """A free environment (warm: False), or a new one to start (cold: True), or None when
        throttled, or "stopped"; waits while all `limit` environments are busy."""
        with self._condition:
            while True:
                if self._stopped:
                    return "stopped"
                if self._idle:
                    environment = self._idle.pop()
                    cold = False
                    break
                if self._count < self.limit:
                    self._count += 1
                    self._numbers += 1
                    self.cold_starts += 1
                    environment = ExecutionEnvironment(self.spec, self._env, number=self._numbers)
                    self._all.append(environment)
                    cold = True
                    break
                if throttle or self.limit == 0:
                    return None
                self._condition.wait()
            self._running += 1
            self.peak_running = max(self.peak_running, self._running)
            return environment, cold

    def _release(self, environment: ExecutionEnvironment) -> None:
        with self._condition:
            self._running -= 1
            keep = environment.is_alive() and not self._stopped
            if keep:
                self._idle.append(environment)
            else:
                self._count -= 1
                with contextlib.suppress(ValueError):
                    self._all.remove(environment)
            self._condition.notify_all()
        if not keep:
            environment.stop()  # reap it and close its pipes; a new one starts on demand


class ProcessInvoker:
    """The runner's functions, each in its own pool of execution environments (module docstring)."""

    def __init__(
        self,
        functions: Mapping[str, FunctionSpec],
        *,
        region: str,
        shared_environment: Mapping[str, str],
        overrides: Mapping[str, str] | None = None,
        default_concurrency: int = DEFAULT_CONCURRENCY,
        init_timeout: float = INIT_TIMEOUT_SECONDS,
    ) -> None:
        """`shared_environment`: the stack's variables every function sees; `overrides` win over
        each function's own variables, like ``sam local --env-vars``."""
        if default_concurrency < 1:
            raise ValueError(f"default_concurrency must be at least 1, got {default_concurrency}")
        self._functions = functions
        self._region = region
        self._shared = dict(shared_environment)
        self._overrides = dict(overrides or {})
        self._default_concurrency = default_concurrency
        self._init_timeout = init_timeout
        self._pools: dict[str, FunctionPool] = {}
        self._lock = threading.Lock()

    def concurrency_limit(self, function_logical_id: str) -> int:
        return concurrency_limit(self._functions[function_logical_id], self._default_concurrency)

    def variables(self, spec: FunctionSpec) -> dict[str, str]:
        """The function's own variables: Lambda's, the template's, overrides."""
        return function_variables(spec, self._region, self._overrides)

    def invoke(
        self, function_logical_id: str, event: Any, *, throttle: bool = False
    ) -> InvocationResult:
        """Invoke synchronously in one of the function's environments (see `FunctionPool`)."""
        return self.pool(function_logical_id).invoke(event, throttle=throttle)

    def pool(self, function_logical_id: str) -> FunctionPool:
        spec = self._functions[function_logical_id]
        with self._lock:
            pool = self._pools.get(function_logical_id)
            if pool is None:
                env = child_env({**self._shared, **self.variables(spec)})
                pool = FunctionPool(
                    spec,
                    env,
                    limit=concurrency_limit(spec, self._default_concurrency),
                    init_timeout=self._init_timeout,
                )
                self._pools[function_logical_id] = pool
            return pool

    def pids(self) -> list[int]:
        """The processes of every running execution environment."""
        with self._lock:
            pools = list(self._pools.values())
        return [pid for pool in pools for pid in pool.pids()]

    def stop(self) -> None:
        """Stop every environment; a later invocation starts new ones (cold)."""
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.stop()


def _function_fields(spec: FunctionSpec) -> dict[str, Any]:
    return {
        "logical_id": spec.logical_id,
        "function_name": spec.function_name,
        "arn": spec.arn,
        "handler_file": str(spec.handler_file),
        "handler_attribute": spec.handler_attribute,
        "memory_mb": spec.memory_mb,
        "timeout_seconds": spec.timeout_seconds,
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
