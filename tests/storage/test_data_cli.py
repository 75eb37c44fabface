from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from takeover.app.cli import data as data_cli
from takeover.storage.blobs import LocalBlobStore
from takeover.storage.diff import Rederived, Relabelled, diff_manifests
from takeover.storage.manifest import Manifest, ManifestEntry
from takeover.storage.store import Store
from takeover.storage.testing import make_episode


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="takeover")
    sub = parser.add_subparsers(dest="command", required=True)
    data_cli.add_parser(sub)
    args = parser.parse_args(["data", *argv])
    return int(args.func(args))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "store"
    with Store.create(r) as s:
        s.add_episode(make_episode("ep-a", 7, seed=1, takeover_at=3, task="stack blocks"))
        s.add_episode(make_episode("ep-b", 4, seed=2, success=None, outcome=""))
    return r


def test_list(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("list", "--store", str(root)) == 0
    lines = capsys.readouterr().out.splitlines()
    headers = ["id", "date", "task", "operator", "seed", "steps", "duration", "takeovers", "label", "source"]
    assert lines[0].split() == [*headers, "agree", "ended", "recovered"]
    # One label and where it comes from (the operator's verdict; ep-b has none), no success/outcome pair.
    assert lines[1].split()[3:] == [
        "stack",
        "blocks",
        "ada",
        "1",
        "7",
        "0.7",
        "1",
        "success",
        "operator",
        "1/1",
        "-",
        "-",
    ]
    assert lines[2].split()[-9:] == ["2", "4", "0.4", "0", "-", "-", "-", "-", "-"]


def test_commit_tags_show(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("commit", "--tag", "v1", "--store", str(root), "-m", "first") == 0
    out = capsys.readouterr().out
    with Store.open(root) as s:
        digest = s.resolve("v1").digest
    assert f"v1 -> version {digest}" in out and "2 episodes, 11 steps" in out
    assert _run("commit", "--tag", "only-a", "--episodes", "ep-a", "--store", str(root)) == 0
    capsys.readouterr()
    assert _run("tags", "--store", str(root)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == ["tag", "v1", "only-a"]
    assert lines[1].split()[1:4] == [digest[:12], "2", "11"]
    assert _run("show", "v1", "--store", str(root)) == 0
    out = capsys.readouterr().out
    assert digest in out and "first" in out and "ep-a" in out and "ep-b" in out


def test_user_errors_exit_2_with_one_line(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run("commit", "--tag", "v1", "--store", str(root)) == 0
    capsys.readouterr()
    cases = [
        (["show", "nope", "--store", str(root)], "unknown tag 'nope'; known tags: v1"),
        (["commit", "--tag", "v1", "--store", str(root)], "already exists"),
        (["commit", "--tag", "v2", "--episodes", "ghost", "--store", str(root)], "ghost"),
        (["list", "--store", str(tmp_path / "missing")], "no dataset store at"),
    ]
    for argv, expected in cases:
        assert _run(*argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and expected in err and err.count("\n") == 1, err
        assert "Traceback" not in err


def test_init_then_empty_commit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "fresh"
    assert _run("init", "--store", str(root)) == 0
    assert _run("list", "--store", str(root)) == 0
    assert "no episodes" in capsys.readouterr().out
    assert _run("commit", "--tag", "v1", "--store", str(root)) == 2
    assert "no episodes" in capsys.readouterr().err


def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for cmd in ["init", "list", "commit", "tags", "show"]:
        with pytest.raises(SystemExit) as exc:
            _run(cmd, "--help")
        assert exc.value.code == 0
        assert "usage:" in capsys.readouterr().out


def test_in_a_fresh_process_uses_takeover_store(root: Path) -> None:
    code = (
        "import argparse, sys\n"
        "from takeover.app.cli import data as data_cli\n"
        "p = argparse.ArgumentParser(); s = p.add_subparsers(required=True); data_cli.add_parser(s)\n"
        "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))\n"
    )
    env = {"TAKEOVER_STORE": str(root), "PATH": "/usr/bin:/bin"}
    ok = subprocess.run([sys.executable, "-c", code, "data", "list"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0 and "ep-a" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-c", code, "data", "show", "nope"], env=env, capture_output=True, text=True
    )
    assert (
        bad.returncode == 2 and bad.stderr.startswith("error: unknown tag") and "Traceback" not in bad.stderr
    )


def test_show_says_where_a_camera_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "cams"
    with Store.create(root) as s:
        s.add_episode(make_episode("ep-a", 5, seed=1, cameras=("front", "wrist")))
        s.add_episode(make_episode("ep-b", 4, seed=2, cameras=("front",)))
    assert _run("commit", "--tag", "v1", "--store", str(root)) == 0
    capsys.readouterr()
    assert _run("show", "v1", "--store", str(root)) == 0
    lines = capsys.readouterr().out.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith("cameras"))
    assert lines[at] == "cameras   front: every step"
    assert lines[at + 1] == (
        "          wrist: 4 of 9 steps masked (images.wrist.valid is false there): "
        "no frame at all in 1 of 2 episodes (ep-b)"
    )


def test_commit_leaves_interrupted_attempts_out_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "store"
    with Store.create(root) as s:
        s.add_episode(make_episode("ep-ok", 5, seed=1, end_reason="operator", note="fine"))
        s.add_episode(make_episode("ep-cut", 3, seed=2, outcome="", end_reason="interrupted"))
        s.add_episode(make_episode("ep-headless", 4, seed=3, outcome="", end_reason="limit"))
    capsys.readouterr()
    assert _run("list", "--store", str(root)) == 0
    ended = {ln.split()[0]: ln.split()[-2] for ln in capsys.readouterr().out.splitlines()[1:]}
    assert ended == {"ep-ok": "operator", "ep-cut": "interrupted", "ep-headless": "limit"}
    assert _run("commit", "--tag", "v1", "--store", str(root)) == 0
    out = capsys.readouterr().out
    assert "2 episodes, 9 steps" in out and "left out 1 interrupted attempt(s)" in out
    assert _run("commit", "--tag", "v2", "--include-interrupted", "--store", str(root)) == 0
    assert "3 episodes, 12 steps" in capsys.readouterr().out
    assert _run("commit", "--tag", "v3", "--episodes", "ep-cut", "--store", str(root)) == 0
    with Store.open(root) as store:
        assert sorted(e.episode_id for e in store.episodes_in("v1")) == ["ep-headless", "ep-ok"]
        assert store.resolve("v1").manifest.created_from == {
            "selection": "all",
            "left_out": {"interrupted": 1},
        }
        assert store.resolve("v2").manifest.created_from == {"selection": "all"}
        assert [e.episode_id for e in store.episodes_in("v3")] == ["ep-cut"]
        meta = store.read_episode("ep-ok").meta
        assert (meta.end_reason, meta.note) == ("operator", "fine")


def test_commit_of_only_interrupted_attempts_says_how_to_take_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "store"
    with Store.create(root) as s:
        s.add_episode(make_episode("ep-cut", 3, end_reason="interrupted"))
    assert _run("commit", "--tag", "v1", "--store", str(root)) != 0
    assert "--include-interrupted" in capsys.readouterr().err


def test_diff_lists_added_and_removed_episodes_and_the_totals(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run("commit", "--tag", "only-a", "--episodes", "ep-a", "--store", str(root)) == 0
    with Store.open(root) as s:
        s.add_episode(make_episode("ep-c", 5, seed=3, success=False, outcome="near_success"))
    assert _run("commit", "--tag", "all", "--store", str(root)) == 0
    capsys.readouterr()
    assert _run("diff", "only-a", "all", "--store", str(root)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("only-a (") and " -> all (" in lines[0]
    assert lines[1].split() == ["+", "ep-b", "4", "steps", "-"]
    assert lines[2].split() == ["+", "ep-c", "5", "steps", "near_success"]
    assert "added 2, removed 0, relabelled 0, re-derived 0, trimmed 0" in lines
    totals = {ln.split()[0]: ln.split()[1:] for ln in lines[lines.index("") + 2 :]}
    assert totals["episodes"] == ["1", "->", "3", "(+2)"] and totals["steps"] == ["7", "->", "16", "(+9)"]
    assert totals["near_success"] == ["0", "->", "1", "(+1)"] and "success" not in totals
    assert _run("diff", "all", "only-a", "--store", str(root)) == 0
    assert "- ep-c  5 steps  near_success" in capsys.readouterr().out
    assert _run("diff", "all", "all", "--store", str(root)) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "the same version"
    assert _run("diff", "all", "nope", "--store", str(root)) == 2
    assert "unknown tag 'nope'" in capsys.readouterr().err


def test_diff_of_manifests_finds_relabelled_and_rederived_episodes() -> None:
    def entry(episode_id: str, digest: str, outcome: str, success: bool | None = None) -> ManifestEntry:
        return ManifestEntry(episode_id, digest, 10, success, outcome)

    a = Manifest.build([entry("e1", "d1", ""), entry("e2", "d2", "failure"), entry("e3", "d3", "")], {})
    b = Manifest.build(
        [entry("e1", "d1", "", True), entry("e2", "d2", "near_success"), entry("e3", "x3", "")], {}
    )
    change = diff_manifests(a, b)
    assert not change.added and not change.removed
    assert change.relabelled == (
        Relabelled("e1", "-", "success"),
        Relabelled("e2", "failure", "near_success"),
    )
    assert change.rederived == (Rederived("e3", "other data"),) and not change.empty
    assert change.totals == {"-": (2, 1), "failure": (1, 0), "near_success": (0, 1), "success": (0, 1)}
    assert diff_manifests(a, a).empty and diff_manifests(a, a).totals == {}


def test_fsck_is_clean_on_a_sound_store_and_names_each_problem_with_its_way_out(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run("commit", "--tag", "v1", "--store", str(root)) == 0
    capsys.readouterr()
    assert _run("fsck", "--store", str(root)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "2 episodes, 2 blobs, 1 versions, 1 tags checked: no problems"

    with Store.open(root) as s:
        digest = s.catalog.get_episode("ep-b").blob_digest
    blob = LocalBlobStore(root).path(digest)
    os.chmod(blob, 0o644)
    blob.write_bytes(blob.read_bytes()[:-10] + b"0123456789")  # flipped bytes at its end
    with sqlite3.connect(root / "catalog.db") as db:  # a manifest edited behind the store's back
        (text,) = db.execute("select manifest from versions").fetchone()
        db.execute("update versions set manifest = ?", (text.replace('"num_steps":7', '"num_steps":8'),))
    assert _run("fsck", "--store", str(root)) == 1
    lines = capsys.readouterr().out.splitlines()
    problems = lines[1:-1]
    assert any(ln.startswith(f"episode ep-b: file {digest[:12]} corrupt") for ln in problems), problems
    assert any("its manifest does not hash to its digest: restore it from a copy" in ln for ln in problems)
    assert any(", episode ep-b: its data is damaged (above)" in ln for ln in problems)
    assert lines[-1].endswith("checked: 3 problem(s)")
    assert (
        _run("fsck", "--no-verify", "--store", str(root)) == 1
    )  # present, not re-hashed: the manifest remains
    assert capsys.readouterr().out.splitlines()[-1].endswith("1 problem(s)")


def test_a_version_made_from_a_parent_shows_its_lineage(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run("commit", "--tag", "v1", "--episodes", "ep-a", "--store", str(root), "-m", "first") == 0
    with Store.open(root) as s:
        first = s.resolve("v1")
    assert "parent" not in first.manifest.canonical_json()  # no parent: the digest it always had
    assert _run("commit", "--tag", "v2", "--parent", "v1", "--store", str(root), "-m", "with ep-b") == 0
    assert _run("commit", "--tag", "v3", "--parent", "nope", "--store", str(root)) == 2
    assert "unknown tag 'nope'" in capsys.readouterr().err
    capsys.readouterr()
    assert _run("log", "v2", "--store", str(root)) == 0
    out = capsys.readouterr().out
    with Store.open(root) as s:
        second = s.resolve("v2")
        assert [v.digest for v in s.lineage("v2")] == [second.digest, first.digest]
    assert second.manifest.parent == first.digest
    blocks = out.strip().split("\n\n")
    assert blocks[0].startswith(f"version {second.digest}  v2") and "message   with ep-b" in blocks[0]
    assert "from its parent: added 1, removed 0, relabelled 0, re-derived 0, trimmed 0" in blocks[0]
    assert blocks[1].startswith(f"version {first.digest}  v1") and "episodes  1 (7 steps)" in blocks[1]
    assert _run("fsck", "--store", str(root)) == 0
