"""The functions' logs in a file: Lambda sends what a handler writes to stdout and stderr to
CloudWatch Logs; the runner sends it to `FunctionLogFile` (and, when asked, to the console too).

The handlers' output is told apart by thread: while a thread runs a handler (`handler_output`),
what it writes to ``sys.stdout`` or ``sys.stderr`` goes to the file; other threads (the demo's
console, the runner's own messages) write where they always did. An execution environment in a
process of its own (`devstack.runner.pool`) has its stdout and stderr copied here, a line at a
time, by a thread of its own marked that way; in process (`devstack.runner.invoke`), the thread
that calls the handler is. Logging handlers that already hold the
process's stdout or stderr (Powertools' Logger binds the stream when the layer is first
imported, which may be before the file is opened) are pointed at the router while it is open.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

_running = threading.local()


@contextlib.contextmanager
def handler_output(function_logical_id: str) -> Iterator[None]:
    """Mark the calling thread as running a handler of `function_logical_id`."""
    previous = getattr(_running, "function", None)
    _running.function = function_logical_id
    try:
        yield
    finally:
        _running.function = previous


def _in_handler() -> bool:
    return getattr(_running, "function", None) is not None


class _RoutedStream:
    """Stands in for sys.stdout or sys.stderr: a handler's writes go to the log file."""

    def __init__(self, original: IO[str], log: FunctionLogFile) -> None:
        self.original = original
        self._log = log

    def write(self, text: str) -> int:
        if _in_handler() and self._log.write(text):
            return len(text)
        return self.original.write(text)

    def flush(self) -> None:
        self.original.flush()

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno ...
        return getattr(self.original, name)


class FunctionLogFile:
    """Appends the handlers' output to `path` from `open()` to `close()`; `echo` copies it to
    the console (the process's stdout as it was when opened)."""

    def __init__(self, path: Path, *, echo: bool = False) -> None:
        self.path = path
        self.echo = echo
        self._file: IO[str] | None = None
        self._lock = threading.Lock()
        self._streams: dict[str, _RoutedStream] = {}
        self._retargeted: list[tuple[logging.StreamHandler[Any], IO[str]]] = []

    def open(self) -> None:
        if self._file is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8", buffering=1)
        self._streams = {
            "stdout": _RoutedStream(sys.stdout, self),
            "stderr": _RoutedStream(sys.stderr, self),
        }
        originals = {id(stream.original): stream for stream in self._streams.values()}
        for handler in _stream_handlers():
            routed = originals.get(id(handler.stream))
            if routed is not None:
                self._retargeted.append((handler, handler.stream))
                handler.setStream(routed)
        sys.stdout = self._streams["stdout"]
        sys.stderr = self._streams["stderr"]

    def close(self) -> None:
        if self._file is None:
            return
        for name, stream in self._streams.items():
            if getattr(sys, name) is stream:
                setattr(sys, name, stream.original)
        for handler, original in self._retargeted:
            handler.setStream(original)
        # Handlers created while open (a cold start's import) hold a routed stream: undo that too.
        routed = {id(stream): stream for stream in self._streams.values()}
        for handler in _stream_handlers():
            held = routed.get(id(handler.stream))
            if held is not None:
                handler.setStream(held.original)
        self._retargeted.clear()
        with self._lock:
            self._file.close()
            self._file = None

    def write(self, text: str) -> bool:
        """Append `text`; False once closed (the caller then writes where it would have)."""
        with self._lock:
            if self._file is None:
                return False
            self._file.write(text)
        if self.echo:
            self._streams["stdout"].original.write(text)
        return True


def _stream_handlers() -> list[logging.StreamHandler[Any]]:
    loggers: list[Any] = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    return [
        handler
        for logger in loggers
        for handler in getattr(logger, "handlers", [])
        if isinstance(handler, logging.StreamHandler)
        and not isinstance(handler, logging.FileHandler)
    ]
