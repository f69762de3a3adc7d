"""Installing real Apache Airflow for the local stack: one virtual environment per named version.

A version is named by its key, major.minor ("3.3", "3.0", "2.11"), and pinned to one release:

- "3.3": 3.3.2, the newest Airflow, the default for Airflow 3 (what self-managed users run);
- "3.0": 3.0.6, the newest Airflow 3 that Amazon MWAA offers;
- "2.11": 2.11.0, the newest Airflow 2 that Amazon MWAA offers, the default for Airflow 2.

MWAA's list is the `AirflowVersion` documentation of its API model (botocore's
data/mwaa/2020-07-01/service-2.json: "Valid values: 2.7.2, 2.8.1, 2.9.2, 2.10.1, 2.10.3, 2.11.0,
and 3.0.6"); its user guide's "Apache Airflow versions" page holds the same table.

Each version lives in .stack/venvs/airflow-<key>, installed with uv from the pinned lock
devstack/locks/airflow-<key>.lock, once per lock (a stamp holds the lock's digest). A bare major
(3 or 2, as `--airflow-major` gives) stands for that major's default version.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devstack.paths import FIND_PYTHON, LOCKS_DIR, UV_BIN, VENVS_DIR
from devstack.processes import StackError, child_env


@dataclass(frozen=True)
class AirflowRelease:
    """One Airflow the local stack can install: its key, exact version and why it is here."""

    key: str
    version: str
    why: str

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


#: Every version the local stack can run, newest first (the contract suite's default matrix).
AIRFLOW_RELEASES: dict[str, AirflowRelease] = {
    release.key: release
    for release in (
        AirflowRelease("3.3", "3.3.2", "the newest Airflow (self-managed)"),
        AirflowRelease("3.0", "3.0.6", "the newest Airflow 3 on Amazon MWAA"),
        AirflowRelease("2.11", "2.11.0", "the newest Airflow 2 on Amazon MWAA"),
    )
}
#: The version a bare major stands for (`--airflow-major 3|2`, `airflow_pool.get(2)`).
DEFAULT_KEY_BY_MAJOR = {3: "3.3", 2: "2.11"}
#: The default version's exact release, by major (kept for callers that key by major).
AIRFLOW_VERSIONS = {
    major: AIRFLOW_RELEASES[key].version for major, key in DEFAULT_KEY_BY_MAJOR.items()
}
#: Comma-separated version keys (or majors) the contract suite runs against; unset: all of them.
VERSIONS_ENV = "DAGTRIGGER_AIRFLOW_VERSIONS"
PYTHON_VERSION = "3.12"
_STAMP_NAME = ".devstack-lock-sha256"

#: A version key ("3.0"), or a bare major (3) for that major's default version.
VersionSpec = str | int


def release(spec: VersionSpec) -> AirflowRelease:
    """The release a key ("3.0"), an exact version ("3.0.6") or a bare major (3, "3") names."""
    text = str(spec).strip()
    if text.isdigit() and int(text) in DEFAULT_KEY_BY_MAJOR:
        return AIRFLOW_RELEASES[DEFAULT_KEY_BY_MAJOR[int(text)]]
    if text in AIRFLOW_RELEASES:
        return AIRFLOW_RELEASES[text]
    for known in AIRFLOW_RELEASES.values():
        if text == known.version:
            return known
    raise StackError(
        f"Airflow version {spec!r} is not one of {', '.join(AIRFLOW_RELEASES)} "
        f"(or a major: {', '.join(map(str, DEFAULT_KEY_BY_MAJOR))})"
    )


def versions_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """The version keys named by DAGTRIGGER_AIRFLOW_VERSIONS ("3.3,2.11", "all", "3,2"), in order.

    Unset or empty (or "all") means every version in AIRFLOW_RELEASES.
    """
    value = (os.environ if environ is None else environ).get(VERSIONS_ENV, "").strip()
    if value in ("", "all"):
        return list(AIRFLOW_RELEASES)
    keys: list[str] = []
    for part in value.split(","):
        if part.strip():
            key = release(part).key
            if key not in keys:
                keys.append(key)
    return keys


def venv_path(spec: VersionSpec) -> Path:
    return VENVS_DIR / f"airflow-{release(spec).key}"


def lock_path(spec: VersionSpec) -> Path:
    return LOCKS_DIR / f"airflow-{release(spec).key}.lock"


def ensure_airflow_venv(spec: VersionSpec) -> Path:
    """Install Airflow `spec` from its lock into .stack/venvs/airflow-<key> (once per lock)."""
    chosen = release(spec)
    venv, lock = venv_path(chosen.key), lock_path(chosen.key)
    wanted = hashlib.sha256(lock.read_bytes()).hexdigest()
    stamp = venv / _STAMP_NAME
    if _read_text(stamp) == wanted:
        return venv
    with _exclusive_lock(venv.with_name(venv.name + ".install-lock")):
        if _read_text(stamp) == wanted:  # another process finished the install while we waited
            return venv
        _install_venv(venv, lock, f"Airflow {chosen.version}")
        stamp.write_text(wanted)
    return venv


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
