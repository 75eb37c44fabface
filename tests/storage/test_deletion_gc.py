"""Soft deletion (`data delete/undelete`), `data gc`, and the grace period that keeps `check` and
`repair` from taking another station's episode in flight for an orphan; local folder and S3."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, String, Table, insert

from takeover.app.cli import main
from takeover.storage import gc as gc_module
from takeover.storage.errors import (
    EmptySelectionError,
    StorageError,
    UnknownEpisodeError,
    VersionChangeError,
)
from takeover.storage.fsck import fsck
from takeover.storage.gc import collect_garbage
from takeover.storage.manifest import Manifest, ManifestEntry
from takeover.storage.schema import FrameBlob
from takeover.storage.store import Store
from takeover.storage.tables import DerivationRow
from takeover.storage.testing import frames_in_a_log, make_episode
from takeover.storage.video_rows import VideoRecord

DAY = 86400.0


def _add(store: Store, episode_id: str, tmp_path: Path) -> dict[str, str]:
    """An episode with its frames in a frame blob; returns its blobs by kind."""
    ep = make_episode(episode_id, 6, seed=ord(episode_id[-1]), cameras=("front",))
    frames_in_a_log(ep, "front", tmp_path / f"{episode_id}.log")
    frames = ep.cameras["front"].frames
    assert isinstance(frames, FrameBlob)
    return {"file": store.add_episode(ep), "frames": frames.digest}


def _future_table(store: Store) -> Table:
    """A table as a later migration might add it, unknown to the store's code, naming blobs."""
    md = MetaData()
    t = Table(
        "future_blobs",
        md,
        Column("episode_id", String(200)),
        Column("camera", String(64)),
        Column("video_digest", String(64)),
    )
    md.create_all(store.catalog.engine)
    return t


def _video(store: Store, episode_id: str, data: bytes) -> str:
    """A transcoded stream of the episode's front camera, recorded in `episode_videos`."""
    digest = store.blobs.put_bytes(data)
    assert store.catalog.add_video(VideoRecord(episode_id, "front", "h264", "{}", digest, 0.0), "{}")
    return digest


def test_a_deleted_episode_leaves_listings_and_new_versions_and_stays_readable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "store"
    with Store.create(root) as s:
        for k in "abc":
            s.add_episode(make_episode(f"ep-{k}", 5, seed=ord(k), cameras=()))
        s.commit("v1")
    store = ["--store", str(root)]
    assert main(["data", "delete", "ep-b", "ep-c", "--reason", "wrong task", *store]) == 0
    out = capsys.readouterr().out
    assert "deleted ep-b; a version holds it: it stays readable" in out and "left out of `data list`" in out
    assert main(["data", "delete", "ep-b", *store]) == 0
    assert "ep-b: deleted already, since" in capsys.readouterr().out
    assert main(["data", "list", *store]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines[1:-1]] == ["ep-a"] and lines[-1].startswith("2 deleted episode(s)")
    assert main(["data", "commit", "v2", *store]) == 0
    out = capsys.readouterr().out
    assert "1 episodes" in out and "left out 2 deleted episode(s)" in out
    assert main(["data", "commit", "v3", "--episodes", "ep-a", "ep-b", *store]) == 2
    assert "deleted: ep-b" in capsys.readouterr().err
    with Store.open(root) as s:
        assert s.catalog.deletions()["ep-b"].reason == "wrong task"
        # A child of v1 leaves its deleted episodes out too, and says so.
        _, child = s.commit("v1-trimmed", parent="v1", trim={"ep-a": (1, 4)})
        assert [(e.episode_id, e.steps) for e in child.episodes] == [("ep-a", (1, 4))]
        assert child.created_from["left_out"] == {"deleted": 2}
        with pytest.raises(EmptySelectionError, match="would hold no episodes"):
            s.commit("v1-empty", parent="v1", remove=["ep-a"])
        with pytest.raises(VersionChangeError, match="cannot add ep-c: deleted"):
            s.commit("v4", parent="v2", add=["ep-c"])
        # v1 still holds ep-b: it reads as before.
        assert [e.episode_id for e in s.resolve("v1").manifest.episodes] == ["ep-a", "ep-b", "ep-c"]
        assert s.read_episode("ep-b").num_steps == 5
        with pytest.raises(UnknownEpisodeError, match="nope"):
            s.delete_episodes(["nope"])
    assert main(["data", "show", "v1", *store]) == 0
    assert main(["data", "undelete", "ep-b", "ep-a", *store]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == ["ep-a: was not deleted", "undeleted ep-b"]
    assert main(["data", "delete", "nope", *store]) == 2
    assert "no such episode(s) in the catalog: nope" in capsys.readouterr().err


def test_gc_removes_what_deleted_episodes_leave_once_no_version_holds_them(
    blob_url: str, tmp_path: Path
) -> None:
    with Store.create(tmp_path / "store", blob_url=blob_url) as store:
        a, b = _add(store, "ep-a", tmp_path), _add(store, "ep-b", tmp_path)
        _add(store, "ep-c", tmp_path)
        store.commit("v1", episode_ids=["ep-a"])
        derived = store.derived_blobs.put_bytes(b"smoothed ep-b")
        video = _video(store, "ep-b", b"ep-b front camera as video")
        with store.catalog.engine.begin() as conn:
            conn.execute(
                insert(DerivationRow.__table__).values(
                    episode_id="ep-b",
                    name="smooth",
                    params_digest="1" * 64,
                    input_digest=b["file"],
                    version=1,
                    params_json="{}",
                    digest=derived,
                    created_at=0.0,
                )
            )
        orphan = store.blobs.put_bytes(b"left by an interrupted add")
        store.delete_episodes(["ep-a", "ep-b"])
        later = time.time() + 31 * DAY

        recent = collect_garbage(store, retention_s=30 * DAY, grace_s=DAY)  # deleted a moment ago
        assert recent.removals == [] and any(
            "ep-b: deleted 0 s ago, within retention" in k for k in recent.kept
        )
        dry = collect_garbage(store, retention_s=30 * DAY, grace_s=DAY, dry_run=True, now=later)
        gone = {b["file"], b["frames"], derived, video, orphan}
        assert {r.digest for r in dry.removals} == gone and dry.episodes == ["ep-b"]
        assert all(store.blobs.has(d) for d in gone - {derived}) and store.get_episode("ep-b")
        assert any("ep-a: a version holds it" in k for k in dry.kept)
        assert "would remove 5 blob(s)" in dry.summary() and all(r.size > 0 for r in dry.removals)

        done = collect_garbage(store, retention_s=30 * DAY, grace_s=DAY, now=later)
        assert [(r.digest, r.what) for r in done.removals] == [(r.digest, r.what) for r in dry.removals]
        assert not any(store.blobs.has(d) for d in gone - {derived}) and not store.derived_blobs.has(derived)
        with pytest.raises(UnknownEpisodeError):
            store.get_episode("ep-b")
        assert store.blobs.has(a["file"]) and store.blobs.has(a["frames"])  # v1 holds ep-a
        assert store.resolve("v1").manifest.episodes[0].episode_id == "ep-a"
        assert fsck(store).clean
        assert collect_garbage(store, retention_s=30 * DAY, grace_s=DAY, now=later).removals == []


def test_check_and_repair_keep_blobs_in_flight_and_whatever_the_catalog_names(
    blob_url: str, tmp_path: Path
) -> None:
    with Store.create(tmp_path / "store", blob_url=blob_url) as store:
        _add(store, "ep-a", tmp_path)
        in_flight = store.blobs.put_bytes(b"another station's episode, not cataloged yet")
        named = store.blobs.put_bytes(b"named by a table this code does not know")
        pinned = store.blobs.put_bytes(b"a video a version pins")
        future = _future_table(store)
        with store.catalog.engine.begin() as conn:
            conn.execute(insert(future).values(episode_id="ep-z", camera="c", video_digest=named))
        rec = store.get_episode("ep-a")
        pin = ManifestEntry(
            "ep-a", rec.blob_digest, rec.num_steps, rec.success, rec.outcome, videos=(("front", pinned),)
        )
        store.catalog.commit_version(Manifest.build([pin], {}), "pins")

        report = store.check()
        assert report.orphans == [] and [d for d, _ in report.in_flight] == [in_flight]
        assert report.healthy and "in flight: blob" in report.notes()[0]
        assert store.repair() == [] and store.blobs.has(in_flight)
        later = time.time() + 2 * DAY
        old = store.check(now=later)
        assert old.orphans == [in_flight] and not old.healthy
        assert store.repair(now=later) == [f"removed orphan blob {in_flight}"]
        assert store.blobs.has(named) and store.blobs.has(pinned) and store.check(now=later).healthy


def test_nothing_is_removed_when_a_version_cannot_be_read(tmp_path: Path) -> None:
    with Store.create(tmp_path / "store") as store:
        store.add_episode(make_episode("ep-a", 5, cameras=()))
        store.commit("v1")
        orphan = store.blobs.put_bytes(b"orphan")
        with store.catalog.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE versions SET manifest = 'not json'")
        later = time.time() + 2 * DAY
        report = store.check(now=later)
        assert report.orphans == [] and "no blob is taken for an orphan" in report.notes()[0]
        assert store.repair(now=later) == [] and store.blobs.has(orphan)
        with pytest.raises(StorageError, match="nothing was removed"):
            collect_garbage(store, retention_s=0, grace_s=0, now=later)


def test_gc_cli_prints_sizes_and_refuses_a_bad_retention(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gc_module, "_PROGRESS_EVERY_S", 0.0)  # a progress line at every blob
    root = tmp_path / "store"
    with Store.create(root) as store:
        store.add_episode(make_episode("ep-a", 5, cameras=()))
        orphan = store.blobs.put_bytes(b"x" * 2000)
        path = store.blobs.path(orphan)  # type: ignore[attr-defined]
        os.utime(path, (time.time() - 3 * DAY, time.time() - 3 * DAY))
        store.delete_episodes(["ep-a"])
    assert main(["data", "gc", "--dry-run", "--store", str(root)]) == 0
    captured = capsys.readouterr()
    assert "gc: looked at 1 of 2 blobs, 1 to remove so far" in captured.err
    out = captured.out.splitlines()
    assert out[0].split() == ["would", "remove", orphan[:12], "2.0", "kB", "orphan", "blob,", "3", "d", "old"]
    assert out[-1].startswith("would remove 1 blob(s), 2.0 kB") and "dry run" in out[-1]
    assert main(["data", "gc", "--retention", "0s", "--store", str(root)]) == 0
    out = capsys.readouterr().out
    # The episode's rows are gone; its file was written a moment ago: kept for the grace period.
    assert "of deleted episode ep-a, written 0 s ago, within the grace period (a later gc removes it)" in out
    assert out.splitlines()[-1].startswith("removed 1 blob(s), 2.0 kB, of 1 deleted episode(s)")
    with Store.open(root) as store:
        assert store.list_episodes(deleted=None) == []
    assert main(["data", "gc", "--retention", "soon", "--store", str(root)]) == 2
    assert "--retention: a duration is a number with s, m, h or d" in capsys.readouterr().err


@pytest.mark.postgres
def test_gc_and_the_grace_period_on_a_postgres_catalog(pg_schema: tuple[str, str], tmp_path: Path) -> None:
    url, schema = pg_schema
    with Store.create(tmp_path / "store", url, catalog_schema=schema) as store:
        b = _add(store, "ep-b", tmp_path)
        _add(store, "ep-c", tmp_path)
        store.commit("v1", episode_ids=["ep-c"])
        video = _video(store, "ep-b", b"ep-b as video")
        named = store.blobs.put_bytes(b"named by a row of another episode")
        future = _future_table(store)  # in the catalog's schema: reflection finds it there
        with store.catalog.engine.begin() as conn:
            conn.execute(insert(future).values(episode_id="ep-b", camera="front", video_digest=video))
            conn.execute(insert(future).values(episode_id="ep-c", camera="front", video_digest=named))
        store.delete_episodes(["ep-b"])
        later = time.time() + 31 * DAY
        assert store.check(now=later).orphans == []
        done = collect_garbage(store, retention_s=30 * DAY, grace_s=DAY, now=later)
        assert {r.digest for r in done.removals} == {b["file"], b["frames"], video} and done.episodes == [
            "ep-b"
        ]
        assert store.blobs.has(named) and fsck(store).clean
