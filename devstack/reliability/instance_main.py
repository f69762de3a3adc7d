"""One Lambda execution environment in a process of its own (`devstack.reliability.instances`).

    python -m devstack.reliability.instance_main REPLY_FD

Requests arrive on stdin and answers leave on file descriptor REPLY_FD, one JSON document a line;
stdout and stderr are the function's log (Powertools' JSON logs and its EMF metrics), as in
CloudWatch Logs. The first request names the function (its `FunctionSpec` fields); the handler is
then imported (the cold start) and ``{"ready": true}`` answered, or ``{"init_error": ...}`` and
the process ends. Each later request is one invocation, ``{"request_id", "event", "kill_at",
"timeout_seconds"}``, answered ``{"payload": ...}`` or ``{"error": {...}}`` (Lambda's error
document), unless the armed kill point ends the process first. End of input ends the process.

It imports nothing of the runner (`devstack.runner` would add a second to every cold start):
the handler is loaded and given its context as `devstack.runner.invoke` does.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import boto3

from devstack.lambda_context import LambdaContext, error_document
from devstack.reliability.kill_points import KillSwitch

Handler = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class Function:
    """What an instance needs of the function: its handler and what its context reports."""

    logical_id: str
    function_name: str
    arn: str
    handler_file: Path
    handler_attribute: str
    memory_mb: int
    timeout_seconds: float

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> Function:
        module, _, attribute = str(fields["handler"]).rpartition(".")
        return cls(
            logical_id=str(fields["logical_id"]),
            function_name=str(fields["function_name"]),
            arn=str(fields["arn"]),
            handler_file=Path(fields["code_uri"]).joinpath(*module.split(".")).with_suffix(".py"),
            handler_attribute=attribute,
            memory_mb=int(fields["memory_mb"]),
            timeout_seconds=float(fields["timeout_seconds"]),
        )


def load_handler(function: Function) -> Handler:
    """Import the handler's file under a module name of its own (the cold start)."""
    module_name = f"_dagtrigger_instance_{function.logical_id}"
    module_spec = importlib.util.spec_from_file_location(module_name, function.handler_file)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"{function.logical_id}: cannot load {function.handler_file}")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    handler = getattr(module, function.handler_attribute, None)
    if not callable(handler):
        raise ImportError(
            f"{function.logical_id}: {function.handler_file} has no function "
            f"{function.handler_attribute!r}"
        )
    return handler


def serve(requests: IO[str], replies: IO[str]) -> int:
    def answer(document: Mapping[str, Any]) -> None:
        replies.write(json.dumps(document) + "\n")
        replies.flush()

    init = json.loads(requests.readline() or "{}")
    switch = KillSwitch()
    # Before the handler's import: clients copy the session's hooks when they are made.
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    switch.install(boto3.DEFAULT_SESSION.events)
    try:
        function = Function.from_fields(init["function"])
        handler = load_handler(function)
    except Exception as error:
        answer({"init_error": error_document(error)})
        return 1
    answer({"ready": True})
    for line in requests:
        answer(invoke_once(handler, function, json.loads(line), switch))
    return 0


def invoke_once(
    handler: Handler, function: Function, request: Mapping[str, Any], switch: KillSwitch
) -> dict[str, Any]:
    request_id = str(request["request_id"])
    started = time.monotonic()
    timeout = float(request.get("timeout_seconds") or function.timeout_seconds)
    context = LambdaContext(
        function_name=function.function_name,
        function_version="$LATEST",
        invoked_function_arn=function.arn,
        memory_limit_in_mb=function.memory_mb,
        aws_request_id=request_id,
        log_group_name=f"/aws/lambda/{function.function_name}",
        log_stream_name=f"instance/[$LATEST]{request_id.replace('-', '')}",
        deadline_monotonic=started + timeout,
    )
    switch.arm(request.get("kill_at"))
    try:
        payload = handler(request["event"], context)
        return {"payload": json.loads(json.dumps(payload))}
    except Exception as error:
        return {"error": error_document(error)}
    finally:
        switch.arm(None)
        sys.stdout.flush()


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m devstack.reliability.instance_main REPLY_FD", file=sys.stderr)
        return 2
    with open(int(argv[0]), "w", encoding="utf-8") as replies:
        return serve(sys.stdin, replies)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
