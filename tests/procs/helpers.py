"""Finding processes by pid through /proc (Linux), for the tests that kill parents."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rsplit(")", 1)[1].split()  # the command name may hold spaces and brackets


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return sorted(found)


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def wait_until_gone(pids: list[int], timeout_s: float) -> float:
    """Seconds until none of ``pids`` runs; kills the survivors and fails after ``timeout_s``."""
    began = time.monotonic()
    while any(alive(p) for p in pids):
        if time.monotonic() - began > timeout_s:
            survivors = [p for p in pids if alive(p)]
            lines = [f"{p}: {command_line(p)}" for p in survivors]
            for p in survivors:
                os.kill(p, signal.SIGKILL)
            raise AssertionError(f"still running {timeout_s:g} s after their parent died: {lines}")
        time.sleep(0.05)
    return time.monotonic() - began
