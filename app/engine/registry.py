"""The engines running on this machine, so that `takeover policy deploy` finds the one a console
started (its sockets are in a private folder nobody is told about).

An engine writes one small file in this user's runtime folder, ``engine-<pid>-<hash>.endpoint``
(the hash is of the endpoint: one process may run several engines, as tests do), holding its
command endpoint, and removes it when it stops. A file whose process is gone (killed) is
ignored and removed by the next reader.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from takeover.app.runtime.locks import runtime_dir

PREFIX = "engine-"
SUFFIX = ".endpoint"
MAX_ENDPOINT_BYTES = 4096


@dataclass(frozen=True)
class RunningEngine:
    pid: int
    command: str
    """Its command endpoint."""


def register(command_endpoint: str) -> Path:
    """Say that this process serves engine commands at ``command_endpoint``; the file to remove."""
    digest = hashlib.sha256(command_endpoint.encode()).hexdigest()[:12]
    path = runtime_dir() / f"{PREFIX}{os.getpid()}-{digest}{SUFFIX}"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(command_endpoint + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def unregister(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def running_engines() -> list[RunningEngine]:
    """The engines of this user that are running now, by process id."""
    found = []
    for path in sorted(runtime_dir().glob(f"{PREFIX}*{SUFFIX}")):
        digits = path.name[len(PREFIX) : -len(SUFFIX)].partition("-")[0]
        if not digits.isdigit():
            continue
        pid = int(digits)
        if not _alive(pid):
            unregister(path)
            continue
        try:
            with open(path, "rb") as f:
                text = f.read(MAX_ENDPOINT_BYTES).decode("utf-8").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text:
            found.append(RunningEngine(pid, text))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process took the number: not ours, but alive
        return True
    return True
