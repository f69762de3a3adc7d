"""The launcher's side of an execution environment's answers: JSON lines on a pipe of their own.

A worker process (`devstack.runner.lambda_worker`, `devstack.reliability.instance_main`) reads
one JSON document a line from its stdin and writes one JSON answer a line to the file
descriptor it was given, so that whatever the handler prints (its stdout) never mixes with the
answers. `send_line` writes a request; `ReplyChannel.receive` waits for the next answer.
"""

from __future__ import annotations

import json
import os
import select
import time
from collections.abc import Mapping
from typing import IO, Any, Final

#: what `ReplyChannel.receive` returns instead of an answer
ENDED: Final = "the process ended without answering"
TIMED_OUT: Final = "no answer before the deadline"
_READ_CHUNK: Final = 65536


def send_line(stream: IO[bytes] | None, document: Mapping[str, Any]) -> None:
    """Write one request; a process already gone is left for `ReplyChannel.receive` to report."""
    assert stream is not None
    try:
        stream.write(json.dumps(document).encode() + b"\n")
        stream.flush()
    except (BrokenPipeError, ValueError):
        pass


class ReplyChannel:
    """The read end of a worker's answer pipe (owned: `close` closes it)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd
        self._buffer = b""

    def receive(self, deadline: float) -> dict[str, Any] | str:
        """The next answer, `ENDED` when the process closed its end, or `TIMED_OUT`."""
        assert self._fd is not None, "the channel is closed"
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return TIMED_OUT
            ready, _, _ = select.select([self._fd], [], [], remaining)
            if not ready:
                return TIMED_OUT
            chunk = os.read(self._fd, _READ_CHUNK)
            if not chunk:
                return ENDED
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
