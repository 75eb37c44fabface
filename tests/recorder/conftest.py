from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from takeover.storage.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.create(tmp_path / "store") as s:
        yield s


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """``small_disk(megabytes)`` mounts a tmpfs of that size and returns its folder: a real disk
    that really fills. Mounting needs root (CI runs as root); without it these tests fail, saying
    so, rather than skip."""
    mounted: list[Path] = []

    def mount(megabytes: int) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        cmd = ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0755", "tmpfs", str(where)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.fail(
                f"cannot mount a {megabytes} MB tmpfs ({done.stderr.strip() or done.returncode}); "
                f"the full-disk tests need root (uid now {os.geteuid()}); deselect them with -k 'not disk'"
            )
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(folder: Path, name: str = "filler") -> Path:
    """Write a file into ``folder`` until its disk is full; returns it."""
    path = folder / name
    chunk = b"\0" * (1 << 20)
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                f.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 4096:
                    return path
                chunk = chunk[: len(chunk) // 2]
