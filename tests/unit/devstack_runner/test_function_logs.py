"""What handlers write goes to the function log file; the rest of the process keeps its console."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.runner.function_logs import FunctionLogFile, handler_output
from devstack.runner.invoke import Invoker, ProcessEnvironment
from devstack.runner.template import FunctionSpec

HANDLER = """
import json
import logging
import sys

logger = logging.getLogger("fixture.handler")


def lambda_handler(event, context):
    print(json.dumps({"level": "INFO", "message": "from print", "n": event["n"]}))
    logger.warning("from a logger")
    return {"ok": True}
"""


@contextlib.contextmanager
def logger_on_stdout() -> Iterator[logging.StreamHandler[Any]]:
    """The handler's logger holding the process's stdout from before the file opened, as
    Powertools' Logger does (made in the test itself: pytest swaps stdout between phases)."""
    logger = logging.getLogger("fixture.handler")
    handler = logging.StreamHandler(sys.stdout)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def spec_in(folder: Path) -> FunctionSpec:
    (folder / "app.py").write_text(HANDLER)
    return FunctionSpec(
        logical_id="FixtureFunction",
        function_name="fixture",
        arn="arn:aws:lambda:us-east-1:123456789012:function:fixture",
        code_uri=folder,
        handler="app.lambda_handler",
        runtime="python3.12",
        timeout_seconds=5,
        memory_mb=128,
        environment={},
    )


def test_a_handlers_output_goes_to_the_file_and_the_rest_to_the_console(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the function log open, and a function invoked by the runner's invoker
    log = FunctionLogFile(tmp_path / "state" / "functions.log")
    spec = spec_in(tmp_path)
    invoker = Invoker({spec.logical_id: spec}, region="us-east-1", environment=ProcessEnvironment())
    with logger_on_stdout():
        log.open()
        try:
            # When the handler prints and logs, and the launcher prints beside it
            result = invoker.invoke(spec.logical_id, {"n": 1})
            print("progress line")
        finally:
            log.close()

    # Then the handler's lines are in the file, and only the launcher's on the console
    assert result.succeeded
    lines = (tmp_path / "state" / "functions.log").read_text().splitlines()
    assert lines == ['{"level": "INFO", "message": "from print", "n": 1}', "from a logger"]
    assert capsys.readouterr().out == "progress line\n"


def test_closing_puts_the_streams_back(tmp_path: Path) -> None:
    with logger_on_stdout() as handler:
        # Given the process's streams and a logger's, before the log opens
        stdout, stderr, held = sys.stdout, sys.stderr, handler.stream

        # When the log opens and closes
        log = FunctionLogFile(tmp_path / "functions.log")
        log.open()
        log.close()

        # Then every stream is the one it was, and a late write goes to the console
        assert (sys.stdout, sys.stderr, handler.stream) == (stdout, stderr, held)
    with handler_output("FixtureFunction"):
        assert log.write("after close\n") is False


def test_echo_copies_the_handlers_output_to_the_console(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = FunctionLogFile(tmp_path / "functions.log", echo=True)
    log.open()
    try:
        with handler_output("FixtureFunction"):
            print('{"message": "shown"}')
    finally:
        log.close()
    assert capsys.readouterr().out == '{"message": "shown"}\n'
    assert (tmp_path / "functions.log").read_text() == '{"message": "shown"}\n'
