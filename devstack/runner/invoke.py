"""Load the real handlers from their CodeUri and invoke them the way Lambda does, in this process.

The runner's default is an execution environment per concurrent invocation, each a process of
its own (`devstack.runner.pool`). `Invoker` here is the explicit in-process mode
(``LambdaRunner(in_process=True)``), for tools that must see a handler's work from the runner's
own process (a botocore hook on the default session, a monkeypatch). Every function then runs in
this one Python process, which differs from Lambda in ways the runner makes explicit:

* Environment variables are process-wide. The runner sets the shared variables (endpoints,
  credentials, caller extras) once, and each function's own variables (the template's
  ``Environment`` plus Lambda's ``AWS_LAMBDA_*``) only around each invocation.
* Module-level state is shared: the layer (``dagtrigger``, Powertools' Logger and Metrics
  singletons, cached clients and settings) is imported once for all functions. Lambda gives
  each concurrent execution its own process; here, handler calls are serialised by one lock
  (so no function runs beside another, nor beside itself: none of production's contention) so
  that this shared state is never used by two invocations at once, and the layer's
  per-instance state (settings, clients: `forget_layer_caches`) is dropped whenever the next
  invocation is of another function, which then builds its own as its instance would. A
  value a shared module caches at import still keeps the first function's value:
  `differing_variables` names the variables for which that can matter, and the runner logs them.

A handler is imported on its function's first invocation (the cold start), from its file with
``importlib`` under a module name of its own; nothing is added to ``sys.path``. The worker
processes load it the same way (`devstack.runner.lambda_worker`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from devstack.lambda_context import LambdaContext, error_document
from devstack.runner.function_logs import handler_output
from devstack.runner.template import FunctionSpec

logger = logging.getLogger(__name__)
Handler = Callable[[Any, Any], Any]


class InvocationError(RuntimeError):
    """A handler could not be loaded (missing file, import error, no such attribute)."""


@dataclass(frozen=True)
class InvocationResult:
    """One invocation's outcome: the JSON payload, or Lambda's error document."""

    function_logical_id: str
    request_id: str
    payload: Any = None
    error: Mapping[str, Any] | None = None
    duration_seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.error is None


@dataclass
class ProcessEnvironment:
    """Sets variables in ``os.environ`` and puts back what was there before."""

    _saved: list[dict[str, str | None]] = field(default_factory=list)

    def push(self, variables: Mapping[str, str]) -> None:
        self._saved.append({name: os.environ.get(name) for name in variables})
        os.environ.update(variables)

    def pop(self) -> None:
        for name, value in self._saved.pop().items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    @contextlib.contextmanager
    def applied(self, variables: Mapping[str, str]) -> Iterator[None]:
        self.push(variables)
        try:
            yield
        finally:
            self.pop()


def lambda_runtime_variables(spec: FunctionSpec, region: str) -> dict[str, str]:
    """The variables Lambda itself sets for a function (the documented reserved ones we need)."""
    return {
        "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.function_name}",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "LAMBDA_TASK_ROOT": str(spec.code_uri),
    }


def function_variables(
    spec: FunctionSpec, region: str, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The function's own variables for one invocation: Lambda's, the template's, overrides."""
    return {
        **lambda_runtime_variables(spec, region),
        **spec.environment,
        **(overrides or {}),
    }


def differing_variables(functions: Mapping[str, FunctionSpec]) -> dict[str, dict[str, str]]:
    """Variables that functions set to different values: name -> {function: value}."""
    values: dict[str, dict[str, str]] = {}
    for logical_id, spec in functions.items():
        for name, value in spec.environment.items():
            values.setdefault(name, {})[logical_id] = value
    return {
        name: by_function
        for name, by_function in values.items()
        if len(set(by_function.values())) > 1
        or (len(by_function) < len(functions) and len(functions) > 1)
    }


def load_handler(spec: FunctionSpec) -> tuple[ModuleType, Handler]:
    """Import the handler's file under a module name of its own and return the handler."""
    module_name = f"_dagtrigger_local_{spec.logical_id}"
    path = spec.handler_file
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise InvocationError(f"{spec.logical_id}: cannot load {path}")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as error:
        raise InvocationError(
            f"{spec.logical_id}: importing {path} failed: {type(error).__name__}: {error}"
        ) from error
    handler = getattr(module, spec.handler_attribute, None)
    if not callable(handler):
        raise InvocationError(
            f"{spec.logical_id}: {path} has no function {spec.handler_attribute!r}"
        )
    return module, handler


def forget_layer_caches() -> None:
    """Clear the layer's per-instance state, as a fresh Lambda instance starts without it.

    Calls the layer's public ``reset_instance_state`` if the layer is loaded (looked up in
    ``sys.modules``, never imported or changed), so the runner imposes nothing on a layer that
    keeps no such state.
    """
    layer = sys.modules.get("dagtrigger.dependencies")
    reset = getattr(layer, "reset_instance_state", None)
    if reset is not None:
        reset()


class Invoker:
    """Invokes functions one at a time in this process (see the module docstring), each in its
    own variables."""

    def __init__(
        self,
        functions: Mapping[str, FunctionSpec],
        *,
        region: str,
        environment: ProcessEnvironment,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        """`overrides` win over each function's own variables, like `sam local --env-vars`."""
        self._functions = functions
        self._region = region
        self._environment = environment
        self._overrides = dict(overrides or {})
        self._handlers: dict[str, Handler] = {}
        self._lock = threading.Lock()
        #: the function whose settings and clients the layer holds now
        self._layer_state_of: str | None = None

    def invoke(
        self, function_logical_id: str, event: Any, *, throttle: bool = False
    ) -> InvocationResult:
        """Invoke synchronously; the event and the answer go through JSON as they do in Lambda.
        (`throttle` is for the process pool's interface: nothing is throttled here.)"""
        spec = self._functions[function_logical_id]
        request_id = str(uuid.uuid4())
        wire_event = json.loads(json.dumps(event))
        with self._lock, self._environment.applied(self.variables(spec)):
            if self._layer_state_of not in (None, spec.logical_id):
                forget_layer_caches()  # another function's settings must not leak into this one
            self._layer_state_of = spec.logical_id
            started = time.monotonic()
            context = _context(spec, request_id, started)
            try:
                with handler_output(spec.logical_id):
                    handler = self._handler(spec)
                    answer = handler(wire_event, context)
                payload = json.loads(json.dumps(answer))
            except Exception as error:
                return _failed(spec, request_id, error, time.monotonic() - started)
            duration = time.monotonic() - started
        if duration > spec.timeout_seconds:
            return InvocationResult(
                spec.logical_id,
                request_id,
                error={
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"Task timed out after {spec.timeout_seconds:.2f} seconds",
                },
                duration_seconds=duration,
            )
        return InvocationResult(spec.logical_id, request_id, payload, None, duration)

    def variables(self, spec: FunctionSpec) -> dict[str, str]:
        """The function's own variables for one invocation: Lambda's, the template's, overrides."""
        return function_variables(spec, self._region, self._overrides)

    def concurrency_limit(self, function_logical_id: str) -> int:
        """One invocation at a time, of any function."""
        return 1

    def pids(self) -> list[int]:
        """No process of its own: every handler runs in this one."""
        return []

    def stop(self) -> None:
        """Nothing to stop: every handler runs in this process (the runner drops the layer's
        state when it puts the process's environment back)."""

    def _handler(self, spec: FunctionSpec) -> Handler:
        handler = self._handlers.get(spec.logical_id)
        if handler is None:
            logger.info("cold start of %s from %s", spec.logical_id, spec.handler_file)
            _, handler = load_handler(spec)
            self._handlers[spec.logical_id] = handler
        return handler


def _context(spec: FunctionSpec, request_id: str, started: float) -> LambdaContext:
    return LambdaContext(
        function_name=spec.function_name,
        function_version="$LATEST",
        invoked_function_arn=spec.arn,
        memory_limit_in_mb=spec.memory_mb,
        aws_request_id=request_id,
        log_group_name=f"/aws/lambda/{spec.function_name}",
        log_stream_name=f"local/[$LATEST]{request_id.replace('-', '')}",
        deadline_monotonic=started + spec.timeout_seconds,
    )


def _failed(
    spec: FunctionSpec, request_id: str, error: Exception, duration: float
) -> InvocationResult:
    logger.warning("%s raised %s: %s", spec.logical_id, type(error).__name__, error)
    return InvocationResult(
        spec.logical_id,
        request_id,
        error=error_document(error),
        duration_seconds=duration,
    )
