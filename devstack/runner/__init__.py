"""The local stack's Lambda runner: the real handlers, driven by ``template.yaml``.

Development tooling only, never deployed. ``LambdaRunner`` reads the template, creates its
resources in moto and DynamoDB Local, and then runs the functions: SQS event sources are
polled, HTTP API routes are served on a loopback port and schedules fire on time (the
template's, and those created at run time in moto's Scheduler: see
`devstack.runner.scheduler`). Each invocation runs in an execution environment of its function,
a process of its own, with as many at once as the function's concurrency allows
(`devstack.runner.pool`: reserved concurrency, an SQS source's MaximumConcurrency, throttling
of the HTTP API's calls), so that functions contend as they do in Lambda; ``in_process=True``
runs them all in this process instead, one at a time (`devstack.runner.invoke`).
`devstack.runner.function_logs` says where their logs go.

    with LambdaRunner(Path("template.yaml"), moto_endpoint=..., dynamodb_endpoint=...,
                      parameter_overrides={"MwaaEnvironmentNames": "local"}) as runner:
        runner.invoke("S3EventsFunction", event)

`route_invocations` sends a function's invocations (from every event source and from `invoke`)
elsewhere, e.g. to processes of their own that a test can kill (`devstack.reliability`);
`function_environment` gives such a process the variables the function sees here.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from devstack.lifecycle import Service
from devstack.runner.cfn_yaml import TemplateError
from devstack.runner.function_logs import FunctionLogFile
from devstack.runner.http_api import HttpApiServer, Route
from devstack.runner.intrinsics import DEFAULT_REGION, DEFAULT_STACK_NAME, Pseudo
from devstack.runner.invoke import (
    InvocationResult,
    Invoker,
    ProcessEnvironment,
    differing_variables,
    forget_layer_caches,
)
from devstack.runner.moto_fidelity import MotoS3EventFidelity
from devstack.runner.pool import DEFAULT_CONCURRENCY, ProcessInvoker
from devstack.runner.provision import (
    LocalStackResources,
    Provisioner,
    aws_client,
    stack_environment,
)
from devstack.runner.scheduler import (
    ScheduledTarget,
    ScheduleFiring,
    ScheduleRunner,
    StoredSchedules,
    stored_schedule_spec,
)
from devstack.runner.sqs_poller import SqsPoller
from devstack.runner.template import (
    FunctionSpec,
    LocalTemplate,
    ScheduleSpec,
    discover,
    verify_layer_importable,
)

__all__ = [
    "FunctionLogFile",
    "InvocationResult",
    "LambdaRunner",
    "LocalStackResources",
    "ScheduleFiring",
    "TemplateError",
]

logger = logging.getLogger(__name__)
_DEFAULT_MAX_POLLERS: Final = 2

#: what runs one invocation of a routed function: the event in, Lambda's outcome out
InvocationRoute = Callable[[Any], InvocationResult]


class LambdaRunner(Service):
    """Provision, start, invoke and stop the template's functions against the local stack."""

    def __init__(
        self,
        template_path: Path,
        *,
        moto_endpoint: str,
        dynamodb_endpoint: str,
        extra_env: Mapping[str, str] | None = None,
        parameter_overrides: Mapping[str, str | list[str]] | None = None,
        stack_name: str = DEFAULT_STACK_NAME,
        region: str = DEFAULT_REGION,
        poll_wait_seconds: int = 1,
        max_pollers_per_source: int = _DEFAULT_MAX_POLLERS,
        batching_window_seconds: float | None = None,
        async_retry_delays: tuple[float, ...] = (1.0, 2.0),
        http_port: int = 0,
        function_log: FunctionLogFile | None = None,
        in_process: bool = False,
        default_concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        """`batching_window_seconds` caps the template's batching windows (None keeps them);
        `max_pollers_per_source` caps ScalingConfig.MaximumConcurrency to spare the CPU;
        `function_log` receives what the handlers log while the runner is started (None: they
        write to this process's stdout); `default_concurrency` is the most execution
        environments at once of a function without ReservedConcurrentExecutions; `in_process`
        runs every handler in this process, one at a time, for tools that hook into it."""
        self.template: LocalTemplate = discover(
            template_path,
            parameter_overrides=parameter_overrides,
            pseudo=Pseudo(stack_name=stack_name, region=region, sqs_endpoint=moto_endpoint),
        )
        for layer in {layer for spec in self.template.functions.values() for layer in spec.layers}:
            verify_layer_importable(layer)
        differing = differing_variables(self.template.functions) if in_process else {}
        if differing:
            logger.info(
                "variables that differ between functions (a module shared by them keeps the "
                "value of the first function that imports it): %s",
                ", ".join(sorted(differing)),
            )
        self._moto_endpoint = moto_endpoint
        self._dynamodb_endpoint = dynamodb_endpoint
        self._region = region
        self._shared_env = stack_environment(
            moto_endpoint=moto_endpoint,
            dynamodb_endpoint=dynamodb_endpoint,
            region=region,
            extra_env=extra_env,
        )
        self._poll_wait_seconds = poll_wait_seconds
        self._max_pollers = max_pollers_per_source
        self._batching_window = batching_window_seconds
        self._async_retry_delays = async_retry_delays
        self._http_port = http_port
        self._function_log = function_log
        self._environment = ProcessEnvironment()
        self._env_applied = False
        self._in_process = in_process
        self._invoker: Invoker | ProcessInvoker
        if in_process:
            self._invoker = Invoker(
                self.template.functions,
                region=region,
                environment=self._environment,
                overrides=extra_env,
            )
        else:
            self._invoker = ProcessInvoker(
                self.template.functions,
                region=region,
                shared_environment=self._shared_env,
                overrides=extra_env,
                default_concurrency=default_concurrency,
            )
        self._fidelity = MotoS3EventFidelity()
        self._resources: LocalStackResources | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._http_servers: dict[str, HttpApiServer] = {}
        self._schedules: ScheduleRunner | None = None
        self._routes: dict[str, InvocationRoute] = {}
        self._routes_lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def resources(self) -> LocalStackResources:
        if self._resources is None:
            raise RuntimeError("call provision() first")
        return self._resources

    def provision(self) -> LocalStackResources:
        """Create the template's resources and set the shared environment in this process."""
        self._resources = Provisioner(
            self.template,
            moto_endpoint=self._moto_endpoint,
            dynamodb_endpoint=self._dynamodb_endpoint,
        ).provision()
        if not self._env_applied:
            self._environment.push(self._shared_env)
            self._env_applied = True
            if self._in_process:
                forget_layer_caches()  # a fresh instance, with this stack's endpoints
        return self._resources

    def start(self) -> None:
        """Start the SQS pollers, the HTTP API servers and the schedules (provisioning first
        if that has not been done)."""
        resources = self._resources if self._resources is not None else self.provision()
        if self._function_log is not None:
            self._function_log.open()
        self._stop.clear()
        self._start_pollers(resources)
        self._start_http_apis()
        self._start_schedules(resources)

    def stop(self) -> None:
        """Stop every thread and server, then the functions' execution environments, and put
        the process environment back."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        for server in self._http_servers.values():
            server.stop()
        self._http_servers.clear()
        if self._schedules is not None:
            self._schedules.stop()
            self._schedules = None
        self._invoker.stop()
        if self._env_applied:
            self._environment.pop()
            self._env_applied = False
            if self._in_process:
                forget_layer_caches()
        if self._function_log is not None:
            self._function_log.close()

    # -- calls --------------------------------------------------------------------------------

    def invoke(self, function_logical_id: str, event: Any) -> InvocationResult:
        """Invoke one function synchronously with `event` (as ``aws lambda invoke`` would, except
        that a call beyond the function's concurrency waits for a free environment instead of
        being throttled: callers here are tests and tools, not clients that retry)."""
        return self._invoke(function_logical_id, event)

    def concurrency_limit(self, function_logical_id: str) -> int:
        """The most invocations of the function that run at once here."""
        self.template.function(function_logical_id)
        return self._invoker.concurrency_limit(function_logical_id)

    def function_pids(self) -> list[int]:
        """The processes of the functions' running execution environments (none in process)."""
        return self._invoker.pids()

    def _invoke(
        self, function_logical_id: str, event: Any, *, throttle: bool = False
    ) -> InvocationResult:
        self.template.function(function_logical_id)
        with self._routes_lock:
            route = self._routes.get(function_logical_id)
        if route is not None:
            return route(event)
        return self._invoker.invoke(function_logical_id, event, throttle=throttle)

    def _invoke_throttled(self, function_logical_id: str, event: Any) -> InvocationResult:
        """A synchronous call from a client (the HTTP API): throttled, as Lambda throttles it,
        when the function's reserved concurrency is all in use."""
        return self._invoke(function_logical_id, event, throttle=True)

    def route_invocations(self, function_logical_id: str, route: InvocationRoute | None) -> None:
        """Run every later invocation of the function through `route` (None: in this process
        again). SQS pollers, the HTTP API, schedules and `invoke` all follow the route."""
        self.template.function(function_logical_id)
        with self._routes_lock:
            if route is None:
                self._routes.pop(function_logical_id, None)
            else:
                self._routes[function_logical_id] = route

    def function_environment(self, function_logical_id: str) -> dict[str, str]:
        """Every variable the function sees when invoked here: the stack's shared ones (endpoints,
        credentials, extras) and its own (Lambda's, the template's, overrides)."""
        spec = self.template.function(function_logical_id)
        return {**self._shared_env, **self._invoker.variables(spec)}

    @property
    def http_api_urls(self) -> dict[str, str]:
        """HttpApi logical id -> its local base URL (after start())."""
        return {logical_id: server.url for logical_id, server in self._http_servers.items()}

    @property
    def http_api_url(self) -> str:
        """The base URL of the template's only HTTP API."""
        urls = self.http_api_urls
        if len(urls) != 1:
            raise RuntimeError(f"expected one running HTTP API, found {sorted(urls) or 'none'}")
        return next(iter(urls.values()))

    def fire_schedule(
        self,
        schedule_name: str,
        scheduled_time: datetime | None = None,
        *,
        group_name: str | None = None,
    ) -> ScheduleFiring:
        """Deliver one schedule now, as if it fired at `scheduled_time` (default: now).

        Without `group_name`, a schedule of the template, by name. With it, the schedule as
        stored in moto's Scheduler API (one created at run time, e.g. through the HTTP API, or
        the template's own), delivered to the template function its target names.
        """
        runner = self._schedule_runner()
        if group_name is None:
            return runner.fire(schedule_name, scheduled_time)
        return runner.fire_target(self._stored_schedule(schedule_name, group_name), scheduled_time)

    # -- internals ----------------------------------------------------------------------------

    def _start_pollers(self, resources: LocalStackResources) -> None:
        for spec in self.template.functions.values():
            for source in spec.sqs_sources:
                if not source.enabled:
                    continue
                # Each poller waits for its batch's invocation: at most this many batches of
                # the source in flight, its ScalingConfig.MaximumConcurrency as in Lambda.
                count = min(source.maximum_concurrency or 1, self._max_pollers)
                for index in range(count):
                    poller = SqsPoller(
                        sqs_client=aws_client(
                            "sqs", endpoint_url=self._moto_endpoint, region=self._region
                        ),
                        queue_url=resources.queue_url(source.queue_arn),
                        source=source,
                        region=self._region,
                        invoke=functools.partial(self.invoke, spec.logical_id),
                        fidelity=self._fidelity,
                        poll_wait_seconds=self._poll_wait_seconds,
                        batching_window_seconds=self._batching_window,
                    )
                    thread = threading.Thread(
                        target=poller.run_until,
                        args=(self._stop,),
                        name=f"sqs-{spec.logical_id}-{source.event_id}-{index}",
                        daemon=True,
                    )
                    thread.start()
                    self._threads.append(thread)

    def _start_http_apis(self) -> None:
        routes_by_api: dict[str, list[Route]] = {}
        for spec in self.template.functions.values():
            for route in spec.http_routes:
                routes_by_api.setdefault(route.api_logical_id, []).append(
                    Route(route, spec.logical_id)
                )
        pseudo = self.template.resolver.pseudo
        for index, (api_logical_id, routes) in enumerate(sorted(routes_by_api.items())):
            api_id = (
                self.template.resource(api_logical_id).ref
                if api_logical_id in self.template.resolver.resources_section
                else "localapi00"
            )
            functions = {route.function_logical_id for route in routes}
            server = HttpApiServer(
                api_id=api_id,
                routes=routes,
                invoke=self._invoke_throttled,
                # every environment of its functions busy, and calls beyond them to throttle
                max_concurrent_calls=sum(map(self._invoker.concurrency_limit, functions)) + 4,
                account_id=pseudo.account_id,
                region=pseudo.region,
                port=self._http_port + index if self._http_port else 0,
            )
            server.start()
            self._http_servers[api_logical_id] = server

    def _start_schedules(self, resources: LocalStackResources) -> None:
        # Started even without template schedules: schedules created at run time fire too.
        self._schedule_runner().start()

    def _scheduled_target(self, schedule: ScheduleSpec, function: FunctionSpec) -> ScheduledTarget:
        return ScheduledTarget(
            spec=schedule,
            function_logical_id=function.logical_id,
            maximum_retries=function.async_maximum_retries,
            dead_letter_queue_url=(
                self.resources.queue_url(function.dead_letter_queue_arn)
                if function.dead_letter_queue_arn
                else None
            ),
        )

    def _stored_schedule(self, name: str, group_name: str) -> ScheduledTarget:
        """A schedule as moto's Scheduler API holds it, aimed at the function it targets."""
        stored = self._scheduler_client().get_schedule(Name=name, GroupName=group_name)
        target = self._target_of_stored(stored)
        if target is None:
            raise KeyError(
                f"schedule {group_name}/{name} targets {stored['Target']['Arn']}, "
                "which is not a function of the template"
            )
        return target

    def _target_of_stored(self, stored: Mapping[str, Any]) -> ScheduledTarget | None:
        """A stored schedule aimed at the template function it invokes (None: not one of them)."""
        function = next(
            (
                spec
                for spec in self.template.functions.values()
                if spec.arn == stored["Target"]["Arn"]
            ),
            None,
        )
        if function is None:
            return None
        target = self._scheduled_target(stored_schedule_spec(stored), function)
        return dataclasses.replace(target, created_at=stored.get("CreationDate"))

    def _scheduler_client(self) -> Any:
        return aws_client("scheduler", endpoint_url=self._moto_endpoint, region=self._region)

    def _schedule_runner(self) -> ScheduleRunner:
        if self._schedules is None:
            targets = [
                self._scheduled_target(schedule, spec)
                for spec in self.template.functions.values()
                for schedule in spec.schedules
            ]
            pseudo = self.template.resolver.pseudo
            self._schedules = ScheduleRunner(
                targets=targets,
                invoke=self.invoke,
                send_dead_letter=self._send_dead_letter,
                account_id=pseudo.account_id,
                region=pseudo.region,
                retry_delays=self._async_retry_delays,
                stored=StoredSchedules(self._scheduler_client, self._target_of_stored),
            )
        return self._schedules

    def _send_dead_letter(self, queue_url: str, event: Any, result: InvocationResult) -> None:
        """Lambda's asynchronous dead-letter message: the event, the error in attributes."""
        error = result.error or {}
        sqs = aws_client("sqs", endpoint_url=self._moto_endpoint, region=self._region)
        sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=json.dumps(event),
            MessageAttributes={
                "RequestID": {"DataType": "String", "StringValue": result.request_id},
                "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                "ErrorMessage": {
                    "DataType": "String",
                    "StringValue": str(error.get("errorMessage", ""))[:1024] or "error",
                },
            },
        )
