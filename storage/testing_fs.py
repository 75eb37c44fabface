"""Real file-system faults for tests: a small tmpfs that fills up or is remounted read-only, and
a store whose permissions forbid writing, read by a process that permissions bind.

Mounting needs root (CAP_SYS_ADMIN), as in CI. As root, a mount that fails fails the test; as
any other user the test is skipped with the reason shown (``-ra``), never silently.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _need_root(what: str) -> None:
    import pytest

    if os.geteuid() != 0:
        pytest.skip(f"{what} needs root (CI runs the suite as root)")


def _run(argv: Sequence[str]) -> None:
    import pytest

    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(argv)} failed as root: {done.stderr.strip()}")


@contextmanager
def tmpfs(path: Path, size_kib: int) -> Iterator[Path]:
    """A tmpfs of ``size_kib`` KiB mounted at ``path`` (created) for the block; unmounted after."""
    _need_root("mounting a tmpfs")
    path.mkdir(parents=True, exist_ok=True)
    _run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(path)])
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def remount(path: Path, *, read_only: bool) -> None:
    """Make the tmpfs at ``path`` read-only (or writable again)."""
    _run(["mount", "-o", f"remount,{'ro' if read_only else 'rw'}", str(path)])


def fill(folder: Path) -> Path:
    """Write a file in ``folder`` until its file system is full; return it (delete it to free space)."""
    filler = folder / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as f:
        while True:
            try:
                f.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    break
                chunk = chunk[: len(chunk) // 2]
    return filler


def read_only_tree(root: Path) -> None:
    """Take write permission away from every folder and file under ``root`` (``chmod -R a-w``)."""
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)


PERMISSION_BOUND = ("setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner")
"""Run a command as root without the capabilities that override file permissions."""


def run_bound_by_permissions(argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` so that file permissions bind it: as root, without the capabilities that
    override them (util-linux ``setpriv``); as any other user, as it is."""
    prefix = list(PERMISSION_BOUND) if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *argv], capture_output=True, text=True, stdin=subprocess.DEVNULL, **kw)
