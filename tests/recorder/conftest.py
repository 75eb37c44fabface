from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from takeover.storage.store import Store
from takeover.storage.testing_fs import tmpfs


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.create(tmp_path / "store") as s:
        yield s


@pytest.fixture(params=["local", "s3"])
def local_or_s3_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store with its blobs in its folder, and one with its blobs in S3 (a loopback S3 server)."""
    blob_url = request.getfixturevalue("s3_url") if request.param == "s3" else None
    with Store.create(tmp_path / "store", blob_url=blob_url) as s:
        yield s


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """``small_disk(megabytes)`` mounts a tmpfs of that size and returns its folder: a real disk
    that really fills (storage.testing_fs: as root, as in CI, a mount that fails fails the test)."""
    with ExitStack() as mounts:
        count = iter(range(1_000))

        def mount(megabytes: int) -> Path:
            return mounts.enter_context(tmpfs(tmp_path / f"disk{next(count)}", megabytes * 1024))

        yield mount
