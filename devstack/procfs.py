"""What /proc says about processes: the members of a process group, memory, listening sockets."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterable
from pathlib import Path

_LISTEN_STATE = "0A"


def group_pids(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is `pgid`, read from /proc."""
    members = []
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            state, group = _state_and_group(stat_path.read_text())
            if group == pgid and (state != "Z" or _has_live_threads(stat_path.parent)):
                members.append(int(stat_path.parent.name))
    return sorted(members)


def _has_live_threads(process_dir: Path) -> bool:
    """A process whose main thread has exited shows "Z" while its other threads still run (a
    JVM shutting down): it is alive, and holds its sockets, until the last one exits."""
    for task_stat in process_dir.glob("task/[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if _state_and_group(task_stat.read_text())[0] != "Z":
                return True
    return False


def pss_bytes(pids: Iterable[int]) -> int:
    """Proportional set size of the given processes, summed (shared pages counted once)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
    return total


def listening_addresses(pids: Iterable[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state held by the given processes."""
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[len("socket:[") : -1])
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == _LISTEN_STATE and fields[9] in inodes:
                    addresses.add(_decode_proc_address(fields[1]))
    return addresses


def is_listening(port: int, host: str) -> bool:
    """Whether any process has a TCP socket in LISTEN state on host:port (or on every address)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] != _LISTEN_STATE:
                    continue
                address, listening_port = _decode_proc_address(fields[1])
                if listening_port == port and address in (host, "0.0.0.0", "::"):
                    return True
    return False


def _state_and_group(stat: str) -> tuple[str, int]:
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], int(fields[2])


def _decode_proc_address(hex_address: str) -> tuple[str, int]:
    address, port = hex_address.split(":")
    raw = bytes.fromhex(address)
    # /proc/net/tcp* prints the address as 32-bit words in host (little-endian) order.
    packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    family = socket.AF_INET if len(packed) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, packed), int(port, 16)
