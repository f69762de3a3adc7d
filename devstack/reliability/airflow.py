"""A watchdog for the local stack's Airflow: a component that dies is started again.

The local stack's Airflow keeps its metadata in SQLite (no database server on these machines).
When hundreds of runs are triggered at once while tasks run, a component's write can fail with
"database is locked" and the component exits (measured with 300 triggers on two cores: the
scheduler died within a minute, and no run moved after that). MWAA, like any supervisor,
starts a failed scheduler again; so does this watchdog, and it counts each restart so that the
fault matrix's table can say so. Raising SQLite's lock wait or switching it to WAL mode made it
worse: the API server then stalled for minutes on each trigger.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Final

from devstack.airflow import AirflowServer
from devstack.processes import ManagedProcess

CHECK_SECONDS: Final = 2.0


class AirflowWatchdog:
    """Checks `server`'s components every `interval` seconds and restarts the dead ones."""

    def __init__(self, server: AirflowServer, *, interval: float = CHECK_SECONDS) -> None:
        self.server = server
        self.interval = interval
        self.restarts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="airflow-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def restart_dead(self) -> list[str]:
        """Start again every component that has exited; return their names."""
        restarted = []
        with self._lock:
            for index, process in enumerate(self.server.processes):
                if process.is_running():
                    continue
                replacement = ManagedProcess(
                    process.name,
                    process.argv,
                    env=process.env,
                    cwd=process.cwd,
                    log_path=process.log_path,
                )
                replacement.start()
                self.server.processes[index] = replacement
                self.restarts[process.name] += 1
                restarted.append(process.name)
        return restarted

    def restart_counts(self) -> Counter[str]:
        with self._lock:
            return Counter(self.restarts)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.restart_dead()
