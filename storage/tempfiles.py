"""Temporary files locked by their writer, so that cleanup never removes one still being written.

A writer makes its temporary file with :func:`locked_temp` and holds an exclusive ``flock`` on it
until it has renamed or deleted the file; the kernel drops the lock when the process dies. A
temporary file whose lock can be taken is therefore a leftover of a crash: :func:`stale` finds
those and :func:`remove_stale` deletes them, holding the lock while it does, so that a file a
writer is just creating is never taken from under it.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def locked_temp(directory: Path, prefix: str, suffix: str = "") -> Iterator[tuple[int, Path]]:
    """A new, empty temporary file in ``directory`` as ``(fd, path)``, locked until the block ends.

    The file is deleted at the end of the block unless the caller renamed it away. Write through
    ``fd`` or reopen ``path``; a second opener must not take its own ``flock`` on the file (HDF5
    does unless opened with ``locking=False``).
    """
    while True:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
        fcntl.flock(fd, fcntl.LOCK_EX)
        # A cleanup may have seen the file between mkstemp and flock and removed it: start again.
        if os.fstat(fd).st_nlink > 0:
            break
        os.close(fd)
    path = Path(name)
    try:
        yield fd, path
    finally:
        try:
            if path.exists() and os.path.samestat(os.stat(path), os.fstat(fd)):
                path.unlink()
        finally:
            os.close(fd)


def is_stale(path: Path) -> bool:
    """True when no live process holds ``path``'s lock (its writer is gone)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def stale(paths: Iterable[Path]) -> list[Path]:
    """The paths among ``paths`` that are files no live writer holds."""
    return [p for p in paths if p.is_file() and is_stale(p)]


def remove_stale(path: Path) -> bool:
    """Delete ``path`` if no live writer holds it; True if it was deleted."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        # Unlink while holding the lock, and only the file that was locked.
        try:
            if not os.path.samestat(os.stat(path), os.fstat(fd)):
                return False
        except FileNotFoundError:
            return False
        path.unlink()
        return True
    finally:
        os.close(fd)
