"""Each function in execution environments of its own: processes, as many at once as its
concurrency allows, each function beside the others, killed on a timeout or a crash and
started again (cold) for the next invocation."""

from __future__ import annotations

import os
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.runner.function_logs import FunctionLogFile
from devstack.runner.http_api import HttpApiServer, Route
from devstack.runner.invoke import InvocationResult
from devstack.runner.pool import FunctionPool, ProcessInvoker, concurrency_limit
from devstack.runner.template import FunctionSpec, HttpApiRouteSpec, discover

HANDLERS = """
import json
import os
import signal
import sys
import time
from pathlib import Path

STARTED_AT = time.time()  # the cold start
print(f"cold start of {os.environ['AWS_LAMBDA_FUNCTION_NAME']}", flush=True)


def lambda_handler(event, context):
    action = event.get("action")
    started = time.time()
    if action == "sleep":
        time.sleep(event["seconds"])
    elif action == "meet":
        # Wait for the other function's invocation: both must run at once to meet.
        Path(event["mine"]).touch()
        deadline = time.time() + event["seconds"]
        while not Path(event["theirs"]).exists():
            if time.time() > deadline:
                raise TimeoutError("the other invocation never ran beside this one")
            time.sleep(0.02)
    elif action == "crash":
        os._exit(3)
    elif action == "signal":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "print":
        print(json.dumps({"message": "from print", "n": event["n"]}))
        print("to stderr", file=sys.stderr)
    elif action == "raise":
        raise ValueError("asked to fail")
    return {
        "pid": os.getpid(),
        "started": started,
        "ended": time.time(),
        "cold_start_at": STARTED_AT,
        "env": {name: os.environ.get(name) for name in event.get("variables", [])},
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function": context.function_name,
    }
"""


def spec(code_dir: Path, logical_id: str = "SleepyFunction", **changes: Any) -> FunctionSpec:
    base = FunctionSpec(
        logical_id=logical_id,
        function_name=f"local-{logical_id}",
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:local-{logical_id}",
        code_uri=code_dir,
        handler="app.lambda_handler",
        runtime="python3.12",
        timeout_seconds=10,
        memory_mb=128,
        environment={"OWN": logical_id},
    )
    return replace(base, **changes)


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "app.py").write_text(HANDLERS)
    return folder


@pytest.fixture
def invokers() -> Iterator[list[ProcessInvoker]]:
    """Invokers made by a test, stopped after it (no process outlives the test)."""
    made: list[ProcessInvoker] = []
    yield made
    for invoker in made:
        invoker.stop()


def invoker_of(
    invokers: list[ProcessInvoker], *specs: FunctionSpec, **options: Any
) -> ProcessInvoker:
    invoker = ProcessInvoker(
        {s.logical_id: s for s in specs},
        region="us-east-1",
        shared_environment={"SHARED": "from-stack"},
        **options,
    )
    invokers.append(invoker)
    return invoker


def at_once(invoke: Any, events: list[Any]) -> list[InvocationResult]:
    """Every event invoked from a thread of its own, all started together."""
    with ThreadPoolExecutor(max_workers=len(events)) as callers:
        return list(callers.map(invoke, events))


def most_at_once(results: list[InvocationResult]) -> int:
    """The most invocations whose handler ran at the same time (from their own clocks)."""
    marks = sorted(
        [(r.payload["started"], 1) for r in results] + [(r.payload["ended"], -1) for r in results],
        key=lambda mark: (mark[0], mark[1]),  # an end before a start at the same instant
    )
    running = peak = 0
    for _, step in marks:
        running += step
        peak = max(peak, running)
    return peak


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_invocations_beyond_the_limit_wait_and_at_most_the_limit_run_at_once(
    code_dir: Path, invokers: list[ProcessInvoker]
) -> None:
    # Given a function with reserved concurrency 2
    function = spec(code_dir, reserved_concurrency=2)
    invoker = invoker_of(invokers, function)
    assert invoker.concurrency_limit(function.logical_id) == 2

    # When three invocations arrive at once
    results = at_once(
        lambda event: invoker.invoke(function.logical_id, event),
        [{"action": "sleep", "seconds": 1.0}] * 3,
    )

    # Then all succeed, in two execution environments, never more than two at once: the third
    # waited for one of the first two to be free and ran in it (warm)
    assert all(result.succeeded for result in results), [r.error for r in results]
    assert most_at_once(results) == 2
    assert len({result.payload["pid"] for result in results}) == 2
    pool = invoker.pool(function.logical_id)
    assert (pool.peak_running, pool.cold_starts) == (2, 2)


def test_a_limit_of_one_runs_invocations_one_after_another(
    code_dir: Path, invokers: list[ProcessInvoker]
) -> None:
    function = spec(code_dir, "ReconcilerLike", reserved_concurrency=1)
    invoker = invoker_of(invokers, function)
    results = at_once(
        lambda event: invoker.invoke(function.logical_id, event),
        [{"action": "sleep", "seconds": 0.3}] * 3,
    )
    assert all(result.succeeded for result in results)
    assert most_at_once(results) == 1
    assert len({result.payload["pid"] for result in results}) == 1


def test_a_function_without_reserved_concurrency_gets_the_default_limit(code_dir: Path) -> None:
    assert concurrency_limit(spec(code_dir)) == 4
    assert concurrency_limit(spec(code_dir), default=3) == 3
    assert concurrency_limit(spec(code_dir, reserved_concurrency=10)) == 10


def test_two_functions_run_at_the_same_time(
    code_dir: Path, invokers: list[ProcessInvoker], tmp_path: Path
) -> None:
    # Given two functions, each limited to one environment (the reconciler's limit)
    first = spec(code_dir, "FirstFunction", reserved_concurrency=1)
    second = spec(code_dir, "SecondFunction", reserved_concurrency=1)
    invoker = invoker_of(invokers, first, second)
    a, b = str(tmp_path / "a-running"), str(tmp_path / "b-running")

    # When each waits, inside its handler, for the other to be running
    results = at_once(
        lambda pair: invoker.invoke(pair[0], pair[1]),
        [
            (first.logical_id, {"action": "meet", "mine": a, "theirs": b, "seconds": 20}),
            (second.logical_id, {"action": "meet", "mine": b, "theirs": a, "seconds": 20}),
        ],
    )

    # Then both met: they ran side by side, in two processes
    assert all(result.succeeded for result in results), [r.error for r in results]
    assert results[0].payload["pid"] != results[1].payload["pid"]


def test_each_function_sees_its_own_variables_only(
    code_dir: Path, invokers: list[ProcessInvoker], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two functions whose template variables differ, and a variable in this process
    monkeypatch.setenv("FROM_LAUNCHER", "inherited")
    first = spec(code_dir, "FirstFunction", environment={"OWN": "first", "ONLY_FIRST": "1"})
    second = spec(code_dir, "SecondFunction", environment={"OWN": "second"})
    invoker = invoker_of(invokers, first, second, overrides={"EXTRA": "override"})
    names = ["OWN", "ONLY_FIRST", "SHARED", "EXTRA", "AWS_LAMBDA_FUNCTION_NAME", "LAMBDA_TASK_ROOT"]

    # When both run, at once
    results = at_once(
        lambda logical_id: invoker.invoke(logical_id, {"variables": names}),
        [first.logical_id, second.logical_id],
    )

    # Then each saw its own variables, the stack's shared ones and the overrides
    assert [result.payload["env"] for result in results] == [
        {
            "OWN": "first",
            "ONLY_FIRST": "1",
            "SHARED": "from-stack",
            "EXTRA": "override",
            "AWS_LAMBDA_FUNCTION_NAME": "local-FirstFunction",
            "LAMBDA_TASK_ROOT": str(code_dir),
        },
        {
            "OWN": "second",
            "ONLY_FIRST": None,
            "SHARED": "from-stack",
            "EXTRA": "override",
            "AWS_LAMBDA_FUNCTION_NAME": "local-SecondFunction",
            "LAMBDA_TASK_ROOT": str(code_dir),
        },
    ]
    # And this process's environment is untouched
    assert "OWN" not in os.environ
    assert "AWS_LAMBDA_FUNCTION_NAME" not in os.environ


def test_a_warm_environment_is_reused_and_keeps_its_module_state(
    code_dir: Path, invokers: list[ProcessInvoker]
) -> None:
    function = spec(code_dir)
    invoker = invoker_of(invokers, function)
    first = invoker.invoke(function.logical_id, {})
    second = invoker.invoke(function.logical_id, {})
    assert first.payload["pid"] == second.payload["pid"]
    assert first.payload["cold_start_at"] == second.payload["cold_start_at"]
    assert invoker.pool(function.logical_id).cold_starts == 1
    assert 0 < second.payload["remaining_ms"] <= 10_000


def test_a_timeout_kills_the_environment_and_the_next_call_starts_a_new_one(
    code_dir: Path, invokers: list[ProcessInvoker]
) -> None:
    # Given a function with a one-second timeout, warm
    function = spec(code_dir, timeout_seconds=1)
    invoker = invoker_of(invokers, function)
    warm = invoker.invoke(function.logical_id, {})
    pid = warm.payload["pid"]

    # When an invocation runs past the timeout
    started = time.monotonic()
    timed_out = invoker.invoke(function.logical_id, {"action": "sleep", "seconds": 30})

    # Then it is Lambda's Sandbox.Timedout, at the timeout, and its process is gone
    assert timed_out.error == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "Task timed out after 1.00 seconds",
    }
    assert time.monotonic() - started < 10
    assert not is_running(pid)
    assert invoker.pids() == []

    # And the next invocation runs in a new environment (a cold start)
    again = invoker.invoke(function.logical_id, {})
    assert again.succeeded
    assert again.payload["pid"] != pid
    assert invoker.pool(function.logical_id).cold_starts == 2


@pytest.mark.parametrize(
    ("action", "ending"), [("crash", "exit status 3"), ("signal", "signal: SIGKILL")]
)
def test_a_crashed_environment_is_an_invocation_error_and_the_next_call_starts_a_new_one(
    code_dir: Path, invokers: list[ProcessInvoker], action: str, ending: str
) -> None:
    function = spec(code_dir)
    invoker = invoker_of(invokers, function)
    pid = invoker.invoke(function.logical_id, {}).payload["pid"]

    crashed = invoker.invoke(function.logical_id, {"action": action})

    assert crashed.error is not None
    assert crashed.error["errorType"] == "Runtime.ExitError"
    assert crashed.error["errorMessage"] == (
        f"RequestId: {crashed.request_id} Error: Runtime exited with error: {ending}"
    )
    again = invoker.invoke(function.logical_id, {})
    assert again.succeeded
    assert again.payload["pid"] != pid


def test_a_raising_handler_is_lambdas_error_document_and_the_environment_lives_on(
    code_dir: Path, invokers: list[ProcessInvoker]
) -> None:
    function = spec(code_dir)
    invoker = invoker_of(invokers, function)
    failed = invoker.invoke(function.logical_id, {"action": "raise"})
    assert failed.error is not None
    assert (failed.error["errorType"], failed.error["errorMessage"]) == (
        "ValueError",
        "asked to fail",
    )
    assert failed.error["stackTrace"]
    assert invoker.invoke(function.logical_id, {}).succeeded
    assert invoker.pool(function.logical_id).cold_starts == 1


def test_a_handler_that_cannot_be_loaded_fails_the_invocation_and_each_call_tries_again(
    code_dir: Path, invokers: list[ProcessInvoker]
) -> None:
    (code_dir / "broken.py").write_text("import no_such_module_here\n")
    missing = spec(code_dir, "MissingFunction", handler="app.nope")
    broken = spec(code_dir, "BrokenFunction", handler="broken.lambda_handler")
    invoker = invoker_of(invokers, missing, broken)

    no_function = invoker.invoke(missing.logical_id, {})
    no_module = invoker.invoke(broken.logical_id, {})

    assert no_function.error is not None
    assert no_function.error["errorType"] == "Runtime.HandlerNotFound"
    assert "has no function 'nope'" in no_function.error["errorMessage"]
    assert no_module.error is not None
    assert no_module.error["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'no_such_module_here'" in no_module.error["errorMessage"]
    assert invoker.pids() == []
    invoker.invoke(missing.logical_id, {})
    assert invoker.pool(missing.logical_id).cold_starts == 2


def wait_until_running(pool: FunctionPool) -> None:
    """Until an invocation is in flight in the pool (not its peak: a warm-up already set it)."""
    deadline = time.monotonic() + 20
    while pool.running < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.running == 1


def test_a_throttling_call_beyond_the_reserved_concurrency_is_refused_at_once(
    code_dir: Path, invokers: list[ProcessInvoker]
) -> None:
    # Given a function whose one reserved environment is busy
    function = spec(code_dir, reserved_concurrency=1)
    invoker = invoker_of(invokers, function)
    busy = threading.Thread(
        target=invoker.invoke, args=(function.logical_id, {"action": "sleep", "seconds": 2})
    )
    busy.start()
    wait_until_running(invoker.pool(function.logical_id))

    # When a client's synchronous call arrives (the HTTP API's)
    started = time.monotonic()
    refused = invoker.invoke(function.logical_id, {}, throttle=True)

    # Then Lambda throttles it at once
    assert time.monotonic() - started < 1
    assert refused.error == {
        "errorType": "TooManyRequestsException",
        "errorMessage": "Rate Exceeded.",
        "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
    }
    # And a caller that waits gets the environment once it is free
    assert invoker.invoke(function.logical_id, {}).succeeded
    busy.join()


def test_the_http_api_answers_a_throttled_call_as_api_gateway_does(
    code_dir: Path, invokers: list[ProcessInvoker]
) -> None:
    # Given an HTTP API in front of a function with one reserved environment, as the runner
    # wires it (its calls throttle)
    function = spec(code_dir, reserved_concurrency=1)
    invoker = invoker_of(invokers, function)
    server = HttpApiServer(
        api_id="abc123",
        routes=[Route(HttpApiRouteSpec("E", "Api", "ANY", "$default"), function.logical_id)],
        invoke=lambda logical_id, event: invoker.invoke(logical_id, event, throttle=True),
        account_id="123456789012",
        region="us-east-1",
        max_concurrent_calls=5,
    )
    server.start()
    try:
        assert requests.get(server.url, timeout=30).status_code == 200  # warm
        # When a request arrives while another keeps the environment busy
        busy = threading.Thread(
            target=invoker.invoke, args=(function.logical_id, {"action": "sleep", "seconds": 2})
        )
        busy.start()
        wait_until_running(invoker.pool(function.logical_id))
        answer = requests.get(server.url, timeout=30)
        busy.join()
    finally:
        server.stop()

    # Then API Gateway's answer to Lambda's 429: 500
    assert (answer.status_code, answer.json()) == (500, {"message": "Internal Server Error"})


def test_a_function_without_reserved_concurrency_is_not_throttled_but_waits(
    code_dir: Path, invokers: list[ProcessInvoker]
) -> None:
    function = spec(code_dir)
    invoker = invoker_of(invokers, function, default_concurrency=1)
    results = at_once(
        lambda event: invoker.invoke(function.logical_id, event, throttle=True),
        [{"action": "sleep", "seconds": 0.3}] * 2,
    )
    assert all(result.succeeded for result in results)


def test_the_output_of_every_environment_goes_to_the_function_log(
    code_dir: Path,
    invokers: list[ProcessInvoker],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the function log open
    log = FunctionLogFile(tmp_path / "state" / "functions.log")
    function = spec(code_dir)
    invoker = invoker_of(invokers, function)
    log.open()
    try:
        # When a handler prints to stdout and stderr, and the launcher prints beside it
        result = invoker.invoke(function.logical_id, {"action": "print", "n": 1})
        print("progress line")
        invoker.stop()  # its output is all copied once its process has ended
    finally:
        log.close()

    # Then the environment's lines are in the file, in order, and only the launcher's on the
    # console
    assert result.succeeded
    lines = (tmp_path / "state" / "functions.log").read_text().splitlines()
    assert lines == [
        "cold start of local-SleepyFunction",
        '{"message": "from print", "n": 1}',
        "to stderr",
    ]
    assert capsys.readouterr().out == "progress line\n"


def test_a_timeout_is_written_to_the_function_log_as_lambda_writes_it(
    code_dir: Path, invokers: list[ProcessInvoker], tmp_path: Path
) -> None:
    log = FunctionLogFile(tmp_path / "functions.log")
    function = spec(code_dir, timeout_seconds=1)
    invoker = invoker_of(invokers, function)
    log.open()
    try:
        result = invoker.invoke(function.logical_id, {"action": "sleep", "seconds": 30})
    finally:
        log.close()
    last = (tmp_path / "functions.log").read_text().splitlines()[-1]
    assert last.endswith(f"{result.request_id} Task timed out after 1.00 seconds")


def test_stopping_ends_every_environment_and_a_later_call_starts_afresh(
    code_dir: Path, invokers: list[ProcessInvoker]
) -> None:
    first, second = spec(code_dir, "FirstFunction"), spec(code_dir, "SecondFunction")
    invoker = invoker_of(invokers, first, second)
    at_once(lambda logical_id: invoker.invoke(logical_id, {}), [first.logical_id] * 2)
    invoker.invoke(second.logical_id, {})
    pids = invoker.pids()
    assert len(pids) in (2, 3)  # the two calls may have shared one environment

    invoker.stop()

    assert invoker.pids() == []
    assert not any(is_running(pid) for pid in pids)
    assert invoker.invoke(first.logical_id, {}).succeeded


def test_stopping_a_pool_lets_the_running_invocation_end_and_refuses_the_waiting_one(
    code_dir: Path,
) -> None:
    # Given a pool of one environment, busy, and a second call waiting for it
    open_files = len(os.listdir("/proc/self/fd"))
    pool = FunctionPool(
        spec(code_dir), {**os.environ, "AWS_LAMBDA_FUNCTION_NAME": "sleepy"}, limit=1
    )
    with ThreadPoolExecutor(max_workers=2) as callers:
        running = callers.submit(pool.invoke, {"action": "sleep", "seconds": 1.0})
        deadline = time.monotonic() + 20
        while not pool.pids() and time.monotonic() < deadline:
            time.sleep(0.01)
        pid = pool.pids()[0]
        waiting = callers.submit(pool.invoke, {})
        time.sleep(0.2)

        # When the pool stops
        pool.stop()

        # Then the running invocation ended (within the grace), its process is gone, and the
        # waiting call is refused
        assert running.result().succeeded
        assert not is_running(pid)
        refused = waiting.result()
    assert refused.error is not None
    assert refused.error["errorType"] == "ServiceException"
    assert pool.pids() == []
    assert pool.invoke({}).error == refused.error
    assert len(os.listdir("/proc/self/fd")) == open_files  # its pipes are closed too


def test_reserved_concurrency_is_read_from_the_template(tmp_path: Path, code_dir: Path) -> None:
    (tmp_path / "template.yaml").write_text(
        textwrap.dedent(
            """
            Transform: AWS::Serverless-2016-10-31
            Parameters:
              Reserved: {Type: Number, Default: 3}
            Globals:
              Function: {Runtime: python3.12, CodeUri: code/, Handler: app.lambda_handler}
            Resources:
              Capped:
                Type: AWS::Serverless::Function
                Properties: {ReservedConcurrentExecutions: !Ref Reserved}
              Free:
                Type: AWS::Serverless::Function
            """
        )
    )
    template = discover(tmp_path / "template.yaml")
    assert template.function("Capped").reserved_concurrency == 3
    assert template.function("Free").reserved_concurrency is None
