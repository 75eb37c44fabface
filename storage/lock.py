"""One process at a time: a lock file that says who holds it.

The lock is ``flock`` on the file. The kernel lets go of it when its holder ends, however it
ends (exit, crash, SIGKILL), so a lock left by a dead process is simply taken by the next one:
no stale lock to clean up by hand. While held, the file names its holder (a line of JSON: what,
pid, user, host, since) so that a refused process can say who is in the way.

Advisory: it keeps out the processes that ask (Takeover's own), on one machine's file system.
"""

from __future__ import annotations

import errno
import fcntl
import getpass
import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from takeover.storage.errors import StorageError

STORE_LOCK = "recording.lock"
"""In a store's folder: held by the one process recording attempts into it."""


class LockHeldError(StorageError):
    """Another live process holds the lock; the message says which and what to do."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock."""

    what: str
    """The holding program, e.g. ``takeover run (pid 4242)``."""
    pid: int
    user: str
    host: str
    since: float
    """Wall-clock time it took the lock (seconds since the epoch)."""

    @classmethod
    def me(cls, what: str) -> Holder:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.getuid())
        return cls(what, os.getpid(), user, socket.gethostname(), time.time())

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"{self.what}, pid {self.pid}, {self.user}@{self.host}, since {when}"

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        """The holder a lock file names, or None if it names none (being written, or foreign)."""
        try:
            data = json.loads(text)
            holder = cls(**data)
        except (ValueError, TypeError):
            return None
        typed = (str, int, str, str, float | int)
        fields = (holder.what, holder.pid, holder.user, holder.host, holder.since)
        ok = all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(fields, typed, strict=True))
        return holder if ok else None


class ProcessLock:
    """An exclusive lock on ``path`` for this process. No I/O until :meth:`acquire`."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = Path(path)
        self.what = what
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, busy: str, advice: str) -> Self:
        """Take the lock or raise :class:`LockHeldError`: ``"{busy} is in use by {holder}; {advice}"``.
        OSError if the lock file cannot be made (a folder this user may not write)."""
        if self._fd is not None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = read_holder(self.path)
            who = holder.describe() if holder is not None else "another process (it has not said who yet)"
            raise LockHeldError(f"{busy} is in use by {who}; {advice}") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(asdict(Holder.me(self.what))) + "\n").encode(), 0)
        except OSError:
            os.close(fd)  # lets go of the lock too
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        """Let go (the file stays; the next holder rewrites it). Safe to call more than once."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.ftruncate(fd, 0)
            os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def read_holder(path: Path) -> Holder | None:
    """Who the lock file at ``path`` names (None: nobody, or it cannot be read)."""
    try:
        return Holder.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
