"""A store on a read-only or full file system, or with a damaged catalog: reads work where SQLite
allows, writes are refused before anything is touched, and every failure is a StorageError that
names the path and what to do (real mounts: a small tmpfs; needs root, as in CI)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from takeover.storage import pull
from takeover.storage.errors import (
    CatalogUnavailableError,
    CorruptCatalogError,
    DiskFullError,
    ReadOnlyStoreError,
)
from takeover.storage.seeds import SeedRange
from takeover.storage.store import Store
from takeover.storage.testing import make_episode
from takeover.storage.testing_fs import fill, remount, tmpfs


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "mnt", size_kib=2048) as mnt:
        yield mnt


def _store_with_a_version(root: Path) -> None:
    with Store.create(root) as s:
        s.add_episode(make_episode("ep-a", 9, seed=3))
        s.commit("v1")


def test_a_store_on_a_read_only_file_system_is_read_and_refuses_writes(mounted: Path, tmp_path: Path) -> None:
    root = mounted / "store"
    _store_with_a_version(root)
    before = sorted(p.name for p in root.iterdir())
    remount(mounted, read_only=True)

    with Store.open(root) as store:
        assert store.read_only and store.catalog.read_only
        assert [(e.episode_id, e.seed) for e in store.list_episodes()] == [("ep-a", 3)]
        assert store.read_episode("ep-a").num_steps == 9
        assert [t.name for t in store.tags()] == ["v1"]
        for write, doing in [
            (lambda: store.add_episode(make_episode("ep-b")), "cannot add episode ep-b"),
            (lambda: store.commit("v2"), "cannot commit version 'v2'"),
            (lambda: store.allocate_seed(SeedRange(5000, 9999)), "cannot hand out a collection seed"),
            (lambda: store.catalog.create_tag("v3", "a" * 64), "cannot create tag 'v3'"),
        ]:
            with pytest.raises(ReadOnlyStoreError, match=f"{doing}: .* read-only file system"):
                write()
    assert len(pull("v1", store=root, cache_dir=tmp_path / "cache")) == 9
    with pytest.raises(ReadOnlyStoreError, match=f"a dataset store at {mounted}/new: .*read-only"):
        Store.create(mounted / "new")
    assert sorted(p.name for p in root.iterdir()) == before  # nothing written, not even -wal or -shm


def test_a_full_disk_refuses_writes_and_changes_nothing(mounted: Path) -> None:
    root = mounted / "store"
    _store_with_a_version(root)
    with Store.open(root) as store:
        filler = fill(mounted)
        with pytest.raises(DiskFullError, match=f"the disk holding the catalog {root}/catalog.db is full"):
            for i in range(200):  # the WAL has a little slack; it fills within a few commits
                store.commit(f"v-{i}", episode_ids=["ep-a"], message="x" * 4000)
        made = {t.name for t in store.tags()}
        filler.unlink()
        assert {t.name for t in store.tags()} == made  # what was refused left no trace
        store.commit("after", episode_ids=["ep-a"])
    with pytest.raises(DiskFullError, match=f"a dataset store at {mounted}/new: the disk is full"):
        fill(mounted)
        Store.create(mounted / "new")


def test_a_damaged_or_missing_catalog_is_named_and_never_replaced(tmp_path: Path) -> None:
    root = tmp_path / "store"
    _store_with_a_version(root)
    db = root / "catalog.db"
    good = db.read_bytes()
    db.write_bytes(b"SQLite format 3\0" + b"\x17" * 5000)
    with pytest.raises(CorruptCatalogError, match=f"the catalog {db} is damaged .* restore it from a backup"):
        Store.open(root)
    db.unlink()
    with pytest.raises(CatalogUnavailableError, match=f"the catalog {db} of the store at {root} is missing"):
        Store.open(root)
    assert not db.exists()  # an empty catalog would make every blob look like an orphan
    db.write_bytes(good)
    with Store.open(root) as store:
        assert store.resolve("v1").manifest.num_steps == 9
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_an_unreachable_catalog_server_is_named_without_its_password() -> None:
    from takeover.storage.catalog import Catalog

    url = "postgresql+psycopg://ada:s3cret@127.0.0.1:1/fleet?connect_timeout=2"
    with pytest.raises(CatalogUnavailableError, match=r"cannot reach the catalog database .*:1/fleet") as e:
        Catalog(url).connect()
    assert "s3cret" not in str(e.value) and "***" in str(e.value)
