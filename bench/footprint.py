"""What the platform weighs: the `sam build` output, what the layer installs, the local stack's
memory, and the demo's wall time."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devstack.paths import REPO_ROOT, STACK_DIR
from devstack.procfs import pss_bytes
from devstack.stack import LocalStack

BUILD_DIR = REPO_ROOT / ".aws-sam" / "build"
DEMO_DIR = STACK_DIR / "bench" / "demo-state"


@dataclass(frozen=True)
class Artifact:
    name: str
    files: int
    bytes: int
    zipped_bytes: int


def ensure_build(progress: Callable[[str], None] = print) -> None:
    """`make build` if .aws-sam/build is missing its layer or a function."""
    wanted = ["CoreLayer", "S3EventsFunction", "SchedulesFunction", "ApiFunction"]
    if all((BUILD_DIR / name).is_dir() for name in wanted):
        return
    progress("no complete `sam build` output: running `make build`")
    subprocess.run(["make", "build"], cwd=REPO_ROOT, check=True)


def artifacts(build_dir: Path = BUILD_DIR) -> list[Artifact]:
    """Each function's and layer's folder: files, bytes, and bytes as a deployment zip."""
    found = []
    for folder in sorted(path for path in build_dir.iterdir() if path.is_dir()):
        files = [path for path in folder.rglob("*") if path.is_file()]
        size = sum(path.stat().st_size for path in files)
        found.append(Artifact(folder.name, len(files), size, _zipped(folder, files)))
    return found


def _zipped(folder: Path, files: list[Path]) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path in files:
            archive.write(path, path.relative_to(folder))
    return buffer.tell()


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    return _normal(re.split(r"[\[<>=!~; ]", requirement.strip(), maxsplit=1)[0])


def layer_distributions(build_dir: Path = BUILD_DIR) -> set[str]:
    layer = build_dir / "CoreLayer" / "python"
    return {
        _normal(info.name.removesuffix(".dist-info").rsplit("-", 1)[0])
        for info in layer.glob("*.dist-info")
    }


def dev_only_distributions() -> set[str]:
    """The dev extra's distributions that the layer's own requirements do not name."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    dev = {_requirement_name(item) for item in project["project"]["optional-dependencies"]["dev"]}
    runtime = {
        _requirement_name(line)
        for line in (REPO_ROOT / "layers" / "core" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    return dev - runtime


def descendants(root: int) -> list[int]:
    """`root` and every live process descended from it (from /proc's parent ids)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError):
            text = stat.read_text()
            fields = text[text.rindex(")") + 2 :].split()
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return sorted(found)


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
    return total


@dataclass(frozen=True)
class StackMemory:
    processes: int
    rss_bytes: int
    pss_bytes: int
    by_name: dict[str, int]  # RSS per command name


def stack_memory(stack: LocalStack) -> StackMemory:
    """Every process of this launcher's tree (this process hosts the emulator and the runner;
    Airflow, DynamoDB Local, moto and any worker are its descendants), plus the stack's known
    server processes in case one left the tree."""
    pids = set(descendants(os.getpid()))
    if stack.airflow is not None:
        pids.update(stack.airflow.pids())
    for server in (stack.dynamodb_local, stack.moto):
        if server is not None:
            pids.update(server.process.group_pids())
    by_name: dict[str, int] = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            by_name[name] = by_name.get(name, 0) + rss_bytes([pid])
    ordered = sorted(pids)
    return StackMemory(len(ordered), rss_bytes(ordered), pss_bytes(ordered), by_name)


_DEMO_LAUNCHER = """
import sys
from pathlib import Path
import devstack.__main__ as cli
cli.DEMO_STATE_DIR = Path(sys.argv[1])
sys.argv = ["devstack", "demo"]
cli.app()
"""


def demo_seconds(*, fresh: bool, log: Path) -> tuple[float, int]:
    """Wall time of `python -m devstack demo` (its state in a folder of the bench's own, so a
    demo of someone else's is not touched); `fresh` removes that folder first. Exit code too."""
    if fresh and DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-c", _DEMO_LAUNCHER, str(DEMO_DIR)],
            cwd=REPO_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            code = process.wait()
        except BaseException:
            # Interrupted: let the demo stop its stack (it does on SIGINT), then make sure.
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.terminate()
                process.wait()
            raise
    return time.monotonic() - started, code
