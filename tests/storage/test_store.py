from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from takeover.storage.blobs import LocalBlobStore
from takeover.storage.errors import (
    EmptySelectionError,
    StorageError,
    StoreExistsError,
    StoreNotFoundError,
    TagExistsError,
    UnknownEpisodeError,
    UnknownTagError,
)
from takeover.storage.store import Store
from takeover.storage.testing import make_episode


def test_open_missing_store_names_the_path(tmp_path: Path) -> None:
    where = tmp_path / "nowhere"
    with pytest.raises(StoreNotFoundError) as exc:
        Store.open(where)
    assert str(where) in str(exc.value) and "does not exist" in str(exc.value)
    (tmp_path / "plain").mkdir()
    with pytest.raises(StoreNotFoundError, match="not a dataset store"):
        Store.open(tmp_path / "plain")
    assert not (tmp_path / "plain" / "catalog.db").exists()


def test_create_open_and_no_io_in_constructor(tmp_path: Path) -> None:
    root = tmp_path / "s"
    Store(root)
    assert not root.exists()
    Store.create(root).close()
    assert (root / "store.json").is_file() and (root / "catalog.db").is_file() and (root / "blobs").is_dir()
    with pytest.raises(StoreExistsError):
        Store.create(root)
    with Store.open(root) as s, Store.open_or_create(root) as s2:
        assert s.list_episodes() == s2.list_episodes() == []


def test_external_catalog_needs_its_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    Store.create(tmp_path / "s", catalog_url=url).close()
    assert not (tmp_path / "s" / "catalog.db").exists()
    with pytest.raises(StorageError, match="external database"):
        Store.open(tmp_path / "s")
    Store.open(tmp_path / "s", catalog_url=url).close()


def test_add_episode_stores_blob_and_catalogs(store: Store) -> None:
    ep = make_episode("ep-1", 15, takeover_at=5)
    digest = store.add_episode(ep)
    rec = store.get_episode("ep-1")
    assert rec.blob_digest == digest and rec.num_steps == 15 and rec.num_takeovers == 1
    assert store.blobs.verify(digest)
    back = store.read_episode("ep-1")
    assert back.meta == ep.meta and back.cameras["front"].frames == ep.cameras["front"].frames
    assert store.add_episode(ep) == digest  # idempotent
    assert list((store.root / "tmp").iterdir()) == []


def test_interrupted_add_leaves_no_catalog_row(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(store.catalog, "add_episode", crash)
    ep = make_episode("ep-1")
    with pytest.raises(KeyboardInterrupt):
        store.add_episode(ep)
    monkeypatch.undo()
    assert store.list_episodes() == []
    assert len(list(store.blobs.digests())) == 1  # an orphan blob, harmless
    # a write that dies before the blob lands leaves nothing either
    monkeypatch.setattr(store.blobs, "put_file", crash)
    with pytest.raises(KeyboardInterrupt):
        store.add_episode(make_episode("ep-2"))
    assert store.list_episodes() == [] and list((store.root / "tmp").iterdir()) == []


def test_commit_manifest_and_resolve(store: Store) -> None:
    digests = {i: store.add_episode(make_episode(i, 5 + n, seed=n)) for n, i in enumerate(["c", "a", "b"])}
    version, manifest = store.commit("v1", message="first batch")
    assert [e.episode_id for e in manifest.episodes] == ["a", "b", "c"]
    assert {e.episode_id: e.digest for e in manifest.episodes} == digests
    assert manifest.num_steps == 5 + 6 + 7 and manifest.created_from == {"selection": "all"}
    assert version == manifest.digest()
    resolved = store.resolve("v1")
    assert resolved.digest == version and resolved.manifest == manifest and resolved.message == "first batch"
    assert store.episodes_in("v1") == list(manifest.episodes)

    v2, m2 = store.commit("v2-subset", episode_ids=["b", "a", "b"])
    assert [e.episode_id for e in m2.episodes] == ["a", "b"] and v2 != version
    # the same selection again gives the same version under a new name
    v3, _ = store.commit("v3-subset", episode_ids=["a", "b"])
    assert v3 == v2
    assert [t.name for t in store.tags()] == ["v1", "v2-subset", "v3-subset"]


def test_commit_refusals(store: Store) -> None:
    with pytest.raises(EmptySelectionError, match="no episodes"):
        store.commit("v1")
    store.add_episode(make_episode("a"))
    with pytest.raises(EmptySelectionError):
        store.commit("v1", episode_ids=[])
    with pytest.raises(UnknownEpisodeError, match="ghost"):
        store.commit("v1", episode_ids=["a", "ghost"])
    store.commit("v1")
    store.add_episode(make_episode("b", seed=1))
    with pytest.raises(TagExistsError):
        store.commit("v1")
    assert [e.episode_id for e in store.episodes_in("v1")] == ["a"]  # never moved


def test_unknown_tag_message(store: Store) -> None:
    store.add_episode(make_episode("a"))
    store.commit("release-1")
    with pytest.raises(UnknownTagError, match="known tags: release-1"):
        store.resolve("release-2")


def test_commit_never_opens_an_episode_file(store: Store, tmp_path: Path) -> None:
    """Everything a commit needs is in the catalog: with every episode file deleted or replaced by
    junk after recording, the commit still freezes the right version, quickly; `check` is what finds
    the damage."""
    n = 300
    digests = {f"ep-{i:03d}": store.add_episode(make_episode(f"ep-{i:03d}", 4, seed=i)) for i in range(n)}
    assert isinstance(store.blobs, LocalBlobStore)
    for i, digest in enumerate(digests.values()):
        p = store.blobs.path(digest)
        os.chmod(p, 0o644)
        if i % 2:
            p.unlink()
        else:
            p.write_bytes(b"not an episode file")
    t0 = time.perf_counter()
    _, manifest = store.commit("v1")
    elapsed = time.perf_counter() - t0
    assert {e.episode_id: e.digest for e in manifest.episodes} == digests
    assert elapsed < 0.5, f"commit of {n} episodes took {elapsed:.3f} s"
    report = store.check()
    assert len(report.damaged) == n and report.episodes == n


@pytest.mark.postgres
def test_store_with_a_postgres_catalog(tmp_path: Path, pg_schema: tuple[str, str]) -> None:
    url, schema = pg_schema
    with Store.create(tmp_path / "s", catalog_url=url, catalog_schema=schema) as s:
        d = s.add_episode(make_episode("a", 6))
        version, _ = s.commit("fleet-v1")
    assert not (tmp_path / "s" / "catalog.db").exists()
    with Store.open(tmp_path / "s", catalog_url=url, catalog_schema=schema) as s:
        assert s.resolve("fleet-v1").digest == version
        assert [e.digest for e in s.episodes_in("fleet-v1")] == [d]
