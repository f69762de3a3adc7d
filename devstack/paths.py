"""Where the local stack keeps its code, virtual environments and runtime state."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
STACK_DIR = REPO_ROOT / ".stack"
VENVS_DIR = STACK_DIR / "venvs"
NODE_DIR = STACK_DIR / "node"
STATE_DIR = STACK_DIR / "state"
UV_BIN = STACK_DIR / "uv" / "bin" / "uv"
FIND_PYTHON = REPO_ROOT / "scripts" / "find-python"
DEV_VENV = REPO_ROOT / ".venv"
LOCKS_DIR = PACKAGE_DIR / "locks"
DAGS_DIR = PACKAGE_DIR / "dags"


def write_private_file(path: Path, data: bytes | str) -> None:
    """Write `data` to `path`, readable by its owner only (keys, passwords, secrets)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)
