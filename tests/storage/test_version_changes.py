"""Versions made from a parent plus changes (`data commit NEW --parent OLD --add/--remove/--trim`),
stored as deltas; and catalogs holding whole manifests from before deltas upgrade in place."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine

from takeover.app.cli import main
from takeover.storage import migrations
from takeover.storage.child_version import entry_of
from takeover.storage.errors import VersionChangeError
from takeover.storage.fsck import fsck
from takeover.storage.manifest import Manifest
from takeover.storage.store import Store
from takeover.storage.testing import make_episode
from takeover.storage.video_rows import VideoRecord

FIXTURE = Path(__file__).parent / "fixtures" / "store-before-migrations"


def _run(*argv: str) -> int:
    return main(["data", *argv])


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "store"
    with Store.create(r) as s:
        for k, steps in enumerate((7, 4, 9, 5)):
            s.add_episode(make_episode(f"ep-{k}", steps, seed=k, cameras=()))
        s.commit("v1", episode_ids=["ep-0", "ep-1", "ep-2"])
    return r


def test_a_child_is_its_parent_changed_and_has_the_digest_of_its_whole_manifest(root: Path) -> None:
    with Store.open(root) as s:
        parent = s.resolve("v1")
        digest, child = s.commit("v2", parent="v1", add=["ep-3"], remove=["ep-1"], trim={"ep-2": (2, 6)})
        assert [(e.episode_id, e.steps) for e in child.episodes] == [
            ("ep-0", None),
            ("ep-2", (2, 6)),
            ("ep-3", None),
        ]
        assert child.num_steps == 7 + 4 + 5 and child.parent == parent.digest
        # The same manifest built whole has the same identity: storage does not change it.
        entries = [entry_of(s.get_episode(i)) for i in ("ep-0", "ep-3")]
        entries.append(replace(entry_of(s.get_episode("ep-2")), steps=(2, 6)))
        whole = Manifest.build(entries, child.created_from, parent=parent.digest)
        assert whole == child and whole.digest() == digest
        assert s.catalog.version_storage(digest).delta
        assert s.resolve("v2").manifest == child
        # Trimming back to every step takes the range away. Two deltas would outgrow so small a
        # manifest (a read would cost more than twice a whole one): this one is stored whole.
        d3, m3 = s.commit("v3", parent="v2", trim={"ep-2": (0, 9)})
        assert m3.episodes[1].steps is None and s.catalog.version_storage(d3).depth == 0
        assert [v.digest for v in s.lineage("v3")] == [d3, digest, parent.digest]
        assert fsck(s).clean


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--add", "nope"], "no such episodes: nope"),
        (["--add", "ep-0"], "cannot add ep-0: version v1 holds it already"),
        (["--remove", "ep-3"], "cannot remove ep-3: version v1 does not hold it"),
        (["--trim", "ep-0:3:8"], "cannot trim ep-0 to 3:8: it has 7 steps"),
        (["--trim", "ep-0:5:5"], "cannot trim ep-0 to 5:5"),
        (["--trim", "ep-3:0:2"], "cannot trim ep-3: it is neither in version v1 nor added"),
        (["--trim", "ep-0:x:2"], "--trim takes ID:START:STOP"),
        (["--remove", "ep-0", "--trim", "ep-0:1:2"], "cannot trim ep-0: it is removed"),
        (["--add", "ep-3", "--episodes", "ep-0"], "use one or the other"),
    ],
)
def test_a_change_that_cannot_be_made_is_one_line(
    root: Path, argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run("commit", "v2", "--parent", "v1", *argv, "--store", str(root)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and said in err, err
    with Store.open(root) as s:
        assert [t.name for t in s.tags()] == ["v1"]  # nothing was written


def test_changes_need_a_parent_and_one_name(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Store.open(root) as s, pytest.raises(VersionChangeError, match="--parent TAG"):
        s.commit("v2", add=["ep-3"])
    assert _run("commit", "v2", "--tag", "v3", "--store", str(root)) == 2
    assert _run("commit", "--store", str(root)) == 2
    assert capsys.readouterr().err.count("name the new version once") == 2


def test_the_cli_makes_a_child_and_diff_and_log_say_what_changed(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--add", "ep-3", "--remove", "ep-1", "--trim", "ep-2:2:6"]
    assert _run("commit", "v2", "--parent", "v1", *argv, "--store", str(root)) == 0
    out = capsys.readouterr().out
    assert "3 episodes, 16 steps (stored as its change from v1" in out
    assert _run("diff", "v1", "v2", "--store", str(root)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "+ ep-3  5 steps  success" in lines and "- ep-1  4 steps  success" in lines
    assert "> ep-2  trimmed steps 0:9 -> 2:6" in lines
    assert "added 1, removed 1, relabelled 0, re-derived 0, trimmed 1" in lines
    totals = {ln.split()[0]: ln.split()[1:] for ln in lines[lines.index("") + 2 :]}
    assert totals["steps"] == ["20", "->", "16", "(-4)"] and "episodes" not in totals
    assert _run("log", "v2", "--store", str(root)) == 0
    log = capsys.readouterr().out
    assert "from its parent: added 1, removed 1, relabelled 0, re-derived 0, trimmed 1" in log
    assert _run("show", "v2", "--store", str(root)) == 0
    assert "4 (2:6 of 9)" in capsys.readouterr().out


def _upgrade_to(root: Path, revision: str) -> None:
    """Bring the fixture's catalog (made before migrations) to ``revision`` only."""
    store = Store(root)
    engine = create_engine(f"sqlite:///{root / 'catalog.db'}")
    cfg = migrations._config()
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            cfg.attributes["frame_blobs"] = store._frame_blobs_of
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def test_a_catalog_of_whole_manifests_from_before_deltas_upgrades_in_place(tmp_path: Path) -> None:
    root = tmp_path / "store"
    shutil.copytree(FIXTURE, root)
    for p in [root, *root.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    _upgrade_to(root, "0002_episode_blobs")
    # A child with a parent, frozen whole as the code before deltas froze every version.
    engine = create_engine(f"sqlite:///{root / 'catalog.db'}")
    try:
        with engine.begin() as conn:
            (v1_digest, v1_text) = conn.exec_driver_sql("SELECT digest, manifest FROM versions").one()
            v1 = Manifest.from_json_text(v1_text)
            old_child = Manifest.build(list(v1.episodes[:1]), {"selection": "episode_ids"}, parent=v1_digest)
            conn.exec_driver_sql(
                "INSERT INTO versions (digest, manifest, created_at, message) VALUES (?, ?, 1.0, '')",
                (old_child.digest(), old_child.canonical_json()),
            )
            conn.exec_driver_sql(
                "INSERT INTO tags (name, version_digest, created_at) VALUES ('v1-small', ?, 2.0)",
                (old_child.digest(),),
            )
    finally:
        engine.dispose()
    with Store.open(root) as s:
        assert s.resolve("v1").manifest == v1 and s.resolve("v1-small").manifest == old_child
        assert not s.catalog.version_storage(old_child.digest()).delta
        keep = v1.episodes[1].episode_id
        digest, child = s.commit("v2", parent="v1", remove=[keep])
        assert s.catalog.version_storage(digest).delta and s.resolve("v2").manifest == child
        assert [v.digest for v in s.lineage("v1-small")] == [old_child.digest(), v1_digest]
        assert fsck(s).clean


def test_a_child_pins_the_videos_of_the_episodes_it_adds(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Store.open(root) as s:
        video = s.blobs.put_bytes(b"ep-3 front camera as video")
        s.catalog.add_video(VideoRecord("ep-3", "front", "h264", "{}", video, 0.0), "{}")
    assert _run("commit", "v2", "--parent", "v1", "--add", "ep-3", "--videos", "--store", str(root)) == 0
    with Store.open(root) as s:
        pins = {e.episode_id: e.videos for e in s.resolve("v2").manifest.episodes}
    assert pins == {"ep-0": (), "ep-1": (), "ep-2": (), "ep-3": (("front", video),)}
    assert _run("commit", "v3", "--parent", "v1", "--remove", "ep-0", "--videos", "--store", str(root)) == 2
    assert "--videos pins the videos of the episodes added" in capsys.readouterr().err


def test_a_trimmed_child_pulls_only_its_step_ranges(root: Path, tmp_path: Path) -> None:
    from takeover.storage.pull import pull

    with Store.open(root) as s:
        _, child = s.commit("v2", parent="v1", trim={"ep-2": (2, 6)}, remove=["ep-1"])
        ds = pull("v2", s, cache_dir=tmp_path / "cache", keys=["state"])
        assert len(ds) == child.num_steps == 7 + 4
        whole = s.read_episode("ep-2")
        last = ds[len(ds) - 1]  # ep-2's step 5, the last of 2:6
    assert last["state"].numpy().tolist() == whole.state[5].tolist()
