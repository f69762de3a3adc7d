"""Where the local stack keeps its code, virtual environments and runtime state."""

from __future__ import annotations

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
