"""Starting and stopping the parts of the local stack as wholes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import TracebackType
from typing import Protocol, Self


class Stoppable(Protocol):
    def stop(self) -> None: ...


@contextlib.contextmanager
def stopped_on_failure(part: Stoppable) -> Iterator[None]:
    """Stop `part` if the block raises anything (Ctrl-C included), then let the error go on."""
    try:
        yield
    except BaseException:
        part.stop()
        raise


class Service:
    """Something started and stopped as a whole; ``with`` starts it and always stops it.

    A failed start stops what was already started before the error propagates.
    """

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        with stopped_on_failure(self):
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
