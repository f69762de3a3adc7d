"""One Lambda execution environment of the runner, in a process of its own (`devstack.runner.pool`).

    python -P devstack/runner/lambda_worker.py REPLY_FD

Run as a script (``-P``: nothing added to ``sys.path``), so that it imports nothing of
``devstack.runner``, whose package costs a second more on every cold start; it needs only
`devstack.lambda_context`. Its environment is the function's (the stack's shared variables,
the template's, Lambda's own), set by the runner when it starts the process, as Lambda sets an
execution environment's before its init.

Requests arrive on stdin and answers leave on file descriptor REPLY_FD, one JSON document a
line; stdout and stderr are the function's log (the runner copies them to its function log).
The first request names the function; the handler is then imported (the cold start) and
``{"ready": true, "init_seconds": ...}`` answered, or ``{"init_error": {...}}`` (Lambda's
``Runtime.ImportModuleError`` or ``Runtime.HandlerNotFound``) and the process ends. Each later
request is one invocation, ``{"request_id", "event"}``, answered ``{"payload": ...}`` or
``{"error": {...}}`` (Lambda's error document). One invocation at a time; end of input ends the
process. The function's timeout is the runner's to enforce: it kills this process.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from devstack.lambda_context import LambdaContext, error_document

Handler = Callable[[Any, Any], Any]


class InitError(Exception):
    """The handler could not be imported: Lambda's ``errorType`` and message."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def load_handler(function: Mapping[str, Any]) -> Handler:
    """Import the handler's file under a module name of its own, as the in-process runner does
    (`devstack.runner.invoke.load_handler`); nothing is added to ``sys.path``."""
    logical_id = function["logical_id"]
    path = Path(function["handler_file"])
    module_spec = importlib.util.spec_from_file_location(f"_dagtrigger_local_{logical_id}", path)
    if module_spec is None or module_spec.loader is None:
        raise InitError("Runtime.ImportModuleError", f"{logical_id}: cannot load {path}")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as error:
        raise InitError(
            "Runtime.ImportModuleError",
            f"{logical_id}: importing {path} failed: {type(error).__name__}: {error}",
        ) from error
    handler = getattr(module, function["handler_attribute"], None)
    if not callable(handler):
        raise InitError(
            "Runtime.HandlerNotFound",
            f"{logical_id}: {path} has no function {function['handler_attribute']!r}",
        )
    return handler


def invoke_once(
    handler: Handler, function: Mapping[str, Any], request: Mapping[str, Any]
) -> dict[str, Any]:
    request_id = str(request["request_id"])
    started = time.monotonic()
    context = LambdaContext(
        function_name=function["function_name"],
        function_version="$LATEST",
        invoked_function_arn=function["arn"],
        memory_limit_in_mb=int(function["memory_mb"]),
        aws_request_id=request_id,
        log_group_name=f"/aws/lambda/{function['function_name']}",
        log_stream_name=f"local/[$LATEST]{request_id.replace('-', '')}",
        deadline_monotonic=started + float(function["timeout_seconds"]),
    )
    try:
        payload = handler(request["event"], context)
        return {"payload": json.loads(json.dumps(payload))}
    except Exception as error:
        return {"error": error_document(error)}
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def serve(requests: IO[str], replies: IO[str]) -> int:
    def answer(document: Mapping[str, Any]) -> None:
        replies.write(json.dumps(document) + "\n")
        replies.flush()

    init = json.loads(requests.readline() or "{}")
    function = init.get("function")
    if not isinstance(function, dict):
        return 2
    started = time.monotonic()
    try:
        handler = load_handler(function)
    except InitError as error:
        answer({"init_error": {"errorType": error.error_type, "errorMessage": str(error)}})
        return 1
    answer({"ready": True, "init_seconds": time.monotonic() - started})
    for line in requests:
        answer(invoke_once(handler, function, json.loads(line)))
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -P lambda_worker.py REPLY_FD", file=sys.stderr)
        return 2
    # Lines reach the function log as they are written, not when a buffer fills.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)
    with open(int(argv[0]), "w", encoding="utf-8") as replies:
        return serve(sys.stdin, replies)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
