"""Installing real Apache Airflow for the local stack: one virtual environment per major version.

Each lives in .stack/venvs/airflow-<major>, installed with uv from the pinned lock file in
devstack/locks, once per lock (a stamp holds the lock's digest).
"""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack.paths import FIND_PYTHON, LOCKS_DIR, UV_BIN, VENVS_DIR
from devstack.processes import StackError, child_env

AIRFLOW_VERSIONS = {3: "3.3.2", 2: "2.10.5"}
PYTHON_VERSION = "3.12"
_STAMP_NAME = ".devstack-lock-sha256"


def venv_path(major: int) -> Path:
    return VENVS_DIR / f"airflow-{_check_major(major)}"


def lock_path(major: int) -> Path:
    return LOCKS_DIR / f"airflow-{_check_major(major)}.lock"


def ensure_airflow_venv(major: int) -> Path:
    """Install Airflow `major` from its lock into .stack/venvs/airflow-<major> (once per lock)."""
    venv, lock = venv_path(major), lock_path(major)
    wanted = hashlib.sha256(lock.read_bytes()).hexdigest()
    stamp = venv / _STAMP_NAME
    if _read_text(stamp) == wanted:
        return venv
    with _exclusive_lock(venv.with_name(venv.name + ".install-lock")):
        if _read_text(stamp) == wanted:  # another process finished the install while we waited
            return venv
        _install_venv(venv, lock, f"Airflow {AIRFLOW_VERSIONS[major]}")
        stamp.write_text(wanted)
    return venv


def _check_major(major: int) -> int:
    if major not in AIRFLOW_VERSIONS:
        raise StackError(
            f"Airflow major version {major!r} is not one of {sorted(AIRFLOW_VERSIONS)}"
        )
    return major


def _install_venv(venv: Path, lock: Path, what: str) -> None:
    if not UV_BIN.exists():
        raise StackError(f"uv is missing at {UV_BIN}: run `make venv` first")
    started = time.monotonic()
    _progress(f"installing {what} into {venv} from {lock.name} ...")
    if not (venv / "bin" / "python").exists():
        python = _find_python()
        _run_checked([str(UV_BIN), "venv", "--quiet", "--python", python, str(venv)], what)
    _run_checked(
        [str(UV_BIN), "pip", "sync", "--quiet", "--compile-bytecode", str(lock)],
        what,
        env={**child_env(), "VIRTUAL_ENV": str(venv)},
    )
    _progress(f"installed {what} in {time.monotonic() - started:.0f} s")


def _find_python() -> str:
    result = subprocess.run(
        [str(FIND_PYTHON), PYTHON_VERSION], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise StackError(result.stderr.strip() or f"no Python {PYTHON_VERSION} found")
    return result.stdout.strip()


def _run_checked(argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise StackError(f"installing {what}: {argv[0]} {argv[1]} failed:\n{result.stderr[-2000:]}")


def _progress(message: str) -> None:
    print(f"devstack: {message}", file=sys.stderr, flush=True)


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None
