"""The catalog contract, run against every backend (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import delete, func, update

from takeover.storage import manifest_store
from takeover.storage.catalog import Catalog
from takeover.storage.errors import (
    CorruptCatalogError,
    EpisodeExistsError,
    StorageError,
    TagExistsError,
    UnknownEpisodeError,
    UnknownTagError,
    UnknownVersionError,
)
from takeover.storage.manifest import Manifest, ManifestEntry
from takeover.storage.schema import Event, EventKind
from takeover.storage.tables import VersionRow
from takeover.storage.testing import make_episode

D1, D2, D3 = "a" * 64, "b" * 64, "c" * 64


def _manifest(*ids: str, digest: str = D1) -> Manifest:
    return Manifest.build([ManifestEntry(i, digest, 10, True, "success") for i in ids], {"selection": "all"})


class TestCatalogContract:
    def test_add_get_round_trip_with_counts_and_events(self, catalog: Catalog) -> None:
        ep = make_episode("ep-1", 20, takeover_at=4)
        events = [*ep.events[:-1], Event(EventKind.HANDBACK, 9, 1.5, "recovered"), ep.events[-1]]
        catalog.add_episode(ep.meta, D1, ep.num_steps, events)
        rec = catalog.get_episode("ep-1")
        assert (rec.task, rec.operator, rec.num_steps, rec.blob_digest) == (
            "pick the red cube",
            "ada",
            20,
            D1,
        )
        assert (rec.num_takeovers, rec.num_handbacks) == (1, 1)
        assert rec.success is True and rec.outcome == "success"
        assert rec.started_at == pytest.approx(ep.meta.started_at)
        assert catalog.get_events("ep-1") == events

    def test_end_reason_and_note_round_trip_and_filter(self, catalog: Catalog) -> None:
        kept = make_episode(
            "ep-k", 4, seed=1, outcome="near_success", end_reason="operator", note="close: 2 cm"
        )
        cut = make_episode("ep-i", 3, seed=2, outcome="", end_reason="interrupted")
        old = make_episode("ep-o", 2, seed=3)  # cataloged before end reasons were kept
        for ep in (kept, cut, old):
            catalog.add_episode(ep.meta, D1 if ep is kept else D2, ep.num_steps, ep.events)
        rec = catalog.get_episode("ep-k")
        assert (rec.outcome, rec.end_reason, rec.note) == ("near_success", "operator", "close: 2 cm")
        assert catalog.get_episode("ep-o").end_reason == "" and catalog.get_episode("ep-i").note == ""
        listed = catalog.list_episodes(end_reasons_out=("interrupted",))
        assert [r.episode_id for r in listed] == ["ep-k", "ep-o"]
        assert {r.episode_id: r.end_reason for r in catalog.list_episodes()}["ep-i"] == "interrupted"

    def test_nullable_success(self, catalog: Catalog) -> None:
        ep = make_episode("ep-n", success=None, outcome="")
        catalog.add_episode(ep.meta, D1, ep.num_steps, ep.events)
        assert catalog.get_episode("ep-n").success is None
        assert [e.episode_id for e in catalog.list_episodes(success=None)] == ["ep-n"]

    def test_list_filters_and_order(self, catalog: Catalog) -> None:
        for i, (task, ok) in enumerate([("a", True), ("b", False), ("a", False)]):
            ep = make_episode(f"ep-{i}", seed=10 - i, task=task, success=ok)  # later ids start earlier
            catalog.add_episode(ep.meta, D1, ep.num_steps, ep.events)
        assert [e.episode_id for e in catalog.list_episodes()] == ["ep-2", "ep-1", "ep-0"]
        assert [e.episode_id for e in catalog.list_episodes(task="a")] == ["ep-2", "ep-0"]
        assert [e.episode_id for e in catalog.list_episodes(task="a", success=True)] == ["ep-0"]
        assert [e.episode_id for e in catalog.list_episodes(episode_ids=["ep-1", "x"])] == ["ep-1"]
        assert len(catalog.list_episodes(limit=2)) == 2
        assert catalog.count_episodes() == 3

    def test_episodes_are_write_once(self, catalog: Catalog) -> None:
        ep = make_episode("ep-1")
        catalog.add_episode(ep.meta, D1, ep.num_steps, ep.events)
        catalog.add_episode(ep.meta, D1, ep.num_steps, ep.events)  # same content: a no-op
        with pytest.raises(EpisodeExistsError, match="ep-1"):
            catalog.add_episode(ep.meta, D2, ep.num_steps, ep.events)
        assert catalog.get_episode("ep-1").blob_digest == D1
        assert len(catalog.get_events("ep-1")) == len(ep.events)

    def test_unknown_episode(self, catalog: Catalog) -> None:
        with pytest.raises(UnknownEpisodeError, match="nope"):
            catalog.get_episode("nope")

    def test_version_is_content_addressed_and_idempotent(self, catalog: Catalog) -> None:
        m = _manifest("e2", "e1")
        d = catalog.create_version(m, "first")
        assert d == m.digest() and len(d) == 64
        assert catalog.create_version(_manifest("e1", "e2"), "second") == d
        v = catalog.get_version(d)
        assert v.manifest == m and v.message == "first"
        assert [e.episode_id for e in v.manifest.episodes] == ["e1", "e2"]
        assert catalog.create_version(_manifest("e1")) != d
        with pytest.raises(UnknownVersionError):
            catalog.get_version(D3)

    def test_tags_are_immutable(self, catalog: Catalog) -> None:
        d1 = catalog.create_version(_manifest("e1"))
        d2 = catalog.create_version(_manifest("e2"))
        catalog.create_tag("v1", d1)
        with pytest.raises(TagExistsError, match="never moved"):
            catalog.create_tag("v1", d2)
        with pytest.raises(TagExistsError):
            catalog.create_tag("v1", d1)  # not even re-tagging the same version
        with pytest.raises(TagExistsError):
            catalog.commit_version(_manifest("e3"), "v1")
        assert catalog.resolve_tag("v1") == d1
        # the failed commit wrote nothing
        with pytest.raises(UnknownVersionError):
            catalog.get_version(_manifest("e3").digest())

    def test_commit_version_is_atomic_and_tags_need_a_version(self, catalog: Catalog) -> None:
        d = catalog.commit_version(_manifest("e1"), "v1", "msg")
        assert catalog.resolve_tag("v1") == d and catalog.get_version(d).message == "msg"
        with pytest.raises(UnknownVersionError):
            catalog.create_tag("v2", D3)
        assert [t.name for t in catalog.list_tags()] == ["v1"]

    def test_unknown_tag_lists_known_tags(self, catalog: Catalog) -> None:
        with pytest.raises(UnknownTagError, match="no tags exist yet"):
            catalog.resolve_tag("v1")
        d = catalog.create_version(_manifest("e1"))
        for name in ["release-1", "release-2", "nightly", "a", "b", "c", "d"]:
            catalog.create_tag(name, d)
        with pytest.raises(UnknownTagError) as exc:
            catalog.resolve_tag("release-3")
        msg = str(exc.value)
        assert "'release-3'" in msg and "release-1" in msg and "release-2" in msg and "and 2 more" in msg

    def test_list_tags_oldest_first(self, catalog_factory: Callable[..., Catalog]) -> None:
        ticks = itertools.count(100)
        cat = catalog_factory(clock=lambda: float(next(ticks)))
        d = cat.create_version(_manifest("e1"))
        for name in ["zeta", "alpha", "mid"]:
            cat.create_tag(name, d)
        tags = cat.list_tags()
        assert [t.name for t in tags] == ["zeta", "alpha", "mid"]
        assert all(t.digest == d for t in tags) and tags[0].created_at < tags[-1].created_at

    @pytest.mark.parametrize("bad", ["", " v1", "v 1", "-v", "a" * 129, "f" * 64])
    def test_bad_tag_names_refused(self, catalog: Catalog, bad: str) -> None:
        d = catalog.create_version(_manifest("e1"))
        with pytest.raises(StorageError, match="invalid tag name"):
            catalog.create_tag(bad, d)

    def test_state_survives_reconnect(self, catalog_factory: Callable[..., Catalog]) -> None:
        first = catalog_factory()
        ep = make_episode("ep-1")
        first.add_episode(ep.meta, D1, ep.num_steps, ep.events)
        d = first.commit_version(_manifest("ep-1"), "v1")
        first.close()
        with catalog_factory() as second:
            assert second.resolve_tag("v1") == d
            assert second.get_episode("ep-1").blob_digest == D1

    def test_a_child_is_stored_as_its_change_and_reads_back_whole(self, catalog: Catalog) -> None:
        entries = [ManifestEntry(f"e{k:04d}", D1, 10, True, "success") for k in range(500)]
        parent = catalog.commit_version(Manifest.build(entries, {"selection": "all"}), "p")
        changed = [replace(entries[7], steps=(2, 9)), ManifestEntry("new", D2, 4, False, "failure")]
        kept = [e for e in entries if e.episode_id not in ("e0003", "e0007")] + changed
        child = Manifest.build(kept, {"selection": "parent"}, parent=parent)
        digest = catalog.commit_version(child, "c")
        assert digest == hashlib.sha256(child.canonical_json().encode()).hexdigest()  # identity: the whole
        whole, delta = catalog.version_storage(parent), catalog.version_storage(digest)
        assert not whole.delta and delta.delta and delta.depth == 1
        assert delta.bytes * 20 < whole.bytes  # two entries put, one id removed: not 500 entries
        assert catalog.get_version(digest).manifest == child
        assert [(d, m, e) for d, m, e in catalog.materialised_versions()] == [
            (parent, catalog.get_version(parent).manifest, None),
            (digest, child, None),
        ]

    def test_a_long_lineage_stores_a_whole_manifest_every_so_often(self, catalog: Catalog) -> None:
        entries = [ManifestEntry(f"e{k:04d}", D1, 10, True, "success") for k in range(200)]
        digest = catalog.create_version(Manifest.build(entries, {}))
        depths, made = [], []
        for k in range(2 * manifest_store.FULL_EVERY + 3):
            entries.append(ManifestEntry(f"n{k:04d}", D2, 5, None, ""))
            m = Manifest.build(entries, {"step": k}, parent=digest)
            digest = catalog.create_version(m)
            depths.append(catalog.version_storage(digest).depth)
            made.append((digest, m))
        assert max(depths) == manifest_store.FULL_EVERY - 1 and depths.count(0) == 2
        for d, m in made:
            assert catalog.get_version(d).manifest == m
        assert all(error is None for _, _, error in catalog.materialised_versions())

    def test_a_damaged_delta_is_found_on_reading(self, catalog: Catalog) -> None:
        entries = [ManifestEntry(f"e{k:04d}", D1, 10, True, "success") for k in range(100)]
        parent = catalog.create_version(Manifest.build(entries, {}))
        child = catalog.create_version(Manifest.build(entries[1:], {}, parent=parent))
        with catalog.engine.begin() as conn:
            conn.execute(
                update(VersionRow.__table__)
                .where(VersionRow.digest == child)
                .values(manifest=func.replace(VersionRow.manifest, '"e0000"', '"e0001"'))
            )
        with pytest.raises(CorruptCatalogError, match="does not hash to its digest: restore the catalog"):
            catalog.get_version(child)
        [(_, _, ok), (_, _, damaged)] = catalog.materialised_versions()
        assert ok is None and isinstance(damaged, CorruptCatalogError)
        assert catalog.get_version(parent).manifest.episodes == tuple(entries)
        with catalog.engine.begin() as conn:  # the version under the delta is lost
            conn.execute(delete(VersionRow.__table__).where(VersionRow.digest == parent))
        lacks = f"a change to version {parent[:12]}, which the catalog lacks"
        with pytest.raises(CorruptCatalogError, match=lacks):
            catalog.get_version(child)
        [(_, unread, lost)] = catalog.materialised_versions()
        assert unread is None and lacks in str(lost)

    def test_not_connected_is_a_clear_error(self) -> None:
        cat = Catalog("sqlite://")
        with pytest.raises(StorageError, match="not connected"):
            cat.list_tags()


def test_sqlite_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    with Catalog(f"sqlite:///{tmp_path / 'c.db'}") as cat, cat.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_constructor_does_no_io(tmp_path: Path) -> None:
    Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    assert not (tmp_path / "c.db").exists()
