"""Child processes of the local stack: start, wait for readiness, and stop them cleanly.

Every server runs in its own process group (``start_new_session=True``) so that stopping it also
stops the workers it forked (gunicorn/uvicorn workers, task runners, the JVM).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self, TypeVar

import requests
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from devstack.procfs import group_pids, is_listening

LOOPBACK = "127.0.0.1"
# Inherited variables that would make a child use the wrong interpreter, packages or Airflow home.
_LEAKY_ENV_PREFIXES = ("AIRFLOW__", "AIRFLOW_HOME", "AIRFLOW_CONFIG")
_LEAKY_ENV_NAMES = frozenset({"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"})
_running: set[ManagedProcess] = set()


T = TypeVar("T")


class StackError(RuntimeError):
    """A local stack component could not be installed, started or reached."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """True when no socket listens on host:port.

    Read from the kernel's socket tables, not tried with a bind or a connect: a port in the
    ephemeral range can be the local end of any outgoing connection of another process (a bind
    then fails though nothing listens), and a connect to a free one can connect to itself (TCP
    self-connect).
    """
    return not is_listening(port, host)


def child_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without variables that leak into children, plus overrides."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _LEAKY_ENV_NAMES and not name.startswith(_LEAKY_ENV_PREFIXES)
    }
    env.update(overrides or {})
    return env


class ManagedProcess:
    """One command in its own process group, its stdout and stderr appended to a log file."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str],
        cwd: Path | None,
        log_path: Path,
    ) -> None:
        if not argv:
            raise ValueError(f"{name}: argv must name a program")
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.cwd = cwd
        self.log_path = log_path
        self._popen: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:  # env is left out on purpose: it may hold secrets
        return f"ManagedProcess(name={self.name!r}, pid={self.pid}, log_path={self.log_path})"

    @property
    def pid(self) -> int | None:
        """The group leader's pid (also the process group id), None before start."""
        return self._popen.pid if self._popen else None

    def start(self) -> None:
        """Start the command; the log file is created (with its directory) and appended to."""
        if self._popen is not None:
            raise StackError(f"{self.name}: already started (pid {self._popen.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            try:
                self._popen = subprocess.Popen(
                    self.argv,
                    env=self.env,
                    cwd=self.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as error:
                raise StackError(f"{self.name}: cannot run {self.argv[0]}: {error}") from error
        _running.add(self)

    def is_running(self) -> bool:
        """True while the group leader has not exited."""
        return self._popen is not None and self._popen.poll() is None

    def group_pids(self) -> list[int]:
        """Live (non-zombie) processes in this process group, the leader included."""
        return group_pids(self.pid) if self.pid is not None else []

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM the whole group, SIGKILL whatever is left after `timeout`. Idempotent."""
        stop_all([self], timeout)

    def _signal(self, signum: signal.Signals) -> None:
        if self._popen is not None:
            _signal_group(self._popen.pid, signum)

    def _group_gone(self) -> bool:
        if self._popen is None:
            return True
        self._popen.poll()  # reap the leader so it does not linger as a zombie
        return not group_pids(self._popen.pid)

    def tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the log, for error messages."""
        try:
            with self.log_path.open(encoding="utf-8", errors="replace") as log:
                return "".join(deque(log, maxlen=lines))
        except FileNotFoundError:
            return ""

    def describe_failure(self, lines: int = 40) -> str:
        """A paragraph naming the process, its exit status and the tail of its log."""
        status = "running" if self.is_running() else f"exited with {self.returncode()}"
        return f"{self.name} ({status}; log {self.log_path}):\n{self.tail(lines)}"

    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen else None


@dataclass
class ServerProcess:
    """A server child process on a loopback port: its endpoint and the process behind it."""

    endpoint_url: str
    port: int
    process: ManagedProcess = field(repr=False)

    @classmethod
    def launch(cls, name: str, argv: list[str], *, port: int, cwd: Path, log_path: Path) -> Self:
        """Start `argv` (which listens on 127.0.0.1:`port`); readiness is the caller's to check."""
        process = ManagedProcess(name, argv, env=child_env(), cwd=cwd, log_path=log_path)
        process.start()
        return cls(endpoint_url=f"http://{LOOPBACK}:{port}", port=port, process=process)

    def stop(self) -> None:
        self.process.stop()


def run_to_completion(
    name: str,
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: Path | None,
    log_path: Path,
    timeout: float,
) -> None:
    """Run a one-off command (a migration, a user import) and raise StackError if it fails."""
    process = ManagedProcess(name, argv, env=env, cwd=cwd, log_path=log_path)
    process.start()
    assert process._popen is not None
    try:
        returncode = process._popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise StackError(
            f"{name}: still running after {timeout:.0f} s\n{process.tail()}"
        ) from error
    finally:
        process.stop()
    if returncode != 0:
        raise StackError(f"{name}: exited with {returncode}:\n{process.tail()}")


def wait_until(
    check: Callable[[], T],
    *,
    timeout: float,
    interval: float = 1.0,
    what: str,
    process: ManagedProcess | Sequence[ManagedProcess] | None = None,
) -> T:
    """Poll `check` until it returns something truthy, and return that; raise StackError if a
    `process` dies or time runs out."""
    watched = [process] if isinstance(process, ManagedProcess) else list(process or [])

    def attempt() -> T:
        for candidate in watched:
            if not candidate.is_running():
                raise StackError(f"{what}: a process died\n{candidate.describe_failure()}")
        return check()

    retrying = Retrying(
        retry=retry_if_result(lambda ready: not ready),
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
    )
    try:
        return retrying(attempt)
    except RetryError as error:
        detail = "".join(f"\n{candidate.describe_failure()}" for candidate in watched)
        raise StackError(f"{what}: not ready after {timeout:.0f} s{detail}") from error


def wait_for_port(
    port: int,
    timeout: float,
    *,
    host: str = LOOPBACK,
    interval: float = 0.2,
    process: ManagedProcess | Sequence[ManagedProcess] | None = None,
) -> None:
    """Wait until host:port accepts TCP connections."""
    wait_until(
        lambda: not port_is_free(port, host),
        timeout=timeout,
        interval=interval,
        what=f"port {host}:{port}",
        process=process,
    )


def wait_for_http(
    url: str,
    timeout: float,
    *,
    interval: float = 0.5,
    process: ManagedProcess | Sequence[ManagedProcess] | None = None,
    accept: Callable[[requests.Response], bool] = lambda response: response.status_code < 500,
) -> None:
    """Wait until a GET of `url` gets an answer that `accept` approves (by default: not 5xx)."""

    def answers() -> bool:
        try:
            return accept(requests.get(url, timeout=max(interval, 2.0)))
        except requests.RequestException:
            return False

    wait_until(answers, timeout=timeout, interval=interval, what=f"GET {url}", process=process)


def stop_all(processes: Iterable[ManagedProcess], timeout: float = 10) -> None:
    """Stop several processes at once: SIGTERM every group, then SIGKILL what outlives `timeout`."""
    started = [process for process in processes if process._popen is not None]
    for process in started:
        process._signal(signal.SIGTERM)
    if not _wait_until_gone(started, timeout):
        for process in started:
            process._signal(signal.SIGKILL)
        _wait_until_gone(started, timeout)
    _running.difference_update(started)


def stop_all_running() -> None:
    """Stop every ManagedProcess still running (registered to run when the interpreter exits)."""
    for process in list(_running):
        process.stop(timeout=5)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _wait_until_gone(processes: list[ManagedProcess], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not all(process._group_gone() for process in processes):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


atexit.register(stop_all_running)
