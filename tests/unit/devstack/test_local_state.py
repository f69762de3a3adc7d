"""The state of the stack `make up` runs: one start at a time per checkout."""

from __future__ import annotations

from pathlib import Path

from devstack.local_state import start_lock


def test_a_second_start_is_refused_while_the_first_holds_the_lock(tmp_path: Path) -> None:
    lock = tmp_path / "state" / "up.lock"
    with start_lock(lock) as first, start_lock(lock) as second:
        assert (first, second) == (True, False)
    # And once the first is done, the next start may go
    with start_lock(lock) as later:
        assert later is True
