"""Curation queries through the real command line (`main()`) against a real store: `data query`
with its table, statistics and JSON, a query that does not read, and `data commit --query` that
freezes exactly those episodes, records the query (`data log`, `data show TAG`) and keeps the other
options of `data commit` working."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from takeover.annotation.labels import relabel
from takeover.app.cli import main
from takeover.storage.label_revisions import Label
from takeover.storage.store import Store
from takeover.storage.testing import make_episode


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Six attempts by ada and bo: takeovers in ep1, ep3, ep5; ep2 relabelled by an annotator."""
    r = tmp_path / "store"
    with Store.create(r) as s:
        for i in range(6):
            ep = make_episode(
                f"ep{i}",
                10 + i,
                seed=i,
                takeover_at=4 if i % 2 else None,
                outcome=("success", "failure", "near_success")[i % 3],
                success=i % 3 != 1,
                cameras=(),
                task="stack blocks" if i < 3 else "open the drawer",
            )
            if i >= 4:
                ep.meta = replace(ep.meta, operator="bo")
            s.add_episode(ep)
        relabel(s, "ep2", Label(outcome="failure", failure_category="stuck"), annotator="cy")
    return r


def _run(root: Path, *argv: str) -> int:
    return main([*argv, "--store", str(root)])


def test_query_prints_the_matching_episodes_and_their_statistics(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(root, "data", "query", 'has_intervention and operator == "ada"') == 0
    out = capsys.readouterr().out
    table, stats = out.split("\n\n")
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["id", "date", "task"]
    assert [line.split()[0] for line in lines[1:]] == ["ep1", "ep3"]
    assert "episodes        2\n" in stats
    assert "steps           24\n" in stats  # 11 + 13
    assert "outcomes        1 failure, 1 success\n" in stats
    assert "interventions   2 (1.00 per attempt; 2 attempt(s) with one)" in stats
    assert "human steps     16 (66.7 % of steps)" in stats  # 7 + 9 of 24


def test_query_json_and_stats_only(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(root, "data", "query", "label == failure", "--json", "--sort", "label") == 0
    doc = json.loads(capsys.readouterr().out)
    assert [e["id"] for e in doc["episodes"]] == ["ep1", "ep2", "ep4"]
    ep2 = doc["episodes"][1]
    assert (ep2["label"], ep2["source"], ep2["verdict"], ep2["category"]) == (
        "failure",
        "annotator",
        "near_success",
        "stuck",
    )
    assert ep2["annotator"] == ["ada", "cy"]
    assert doc["statistics"]["outcomes"] == {"failure": 3, "near_success": 0, "success": 0, "none": 0}
    assert _run(root, "data", "query", "label == failure", "--stats") == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "query           label == failure (labels resolved by rule lead)\nepisodes        3\n"
    )
    assert "ep1" not in out


def test_a_query_that_does_not_read_is_refused_before_the_store_is_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "query", "label == sucess or steps > 3", "--store", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "error: label: expected success, near-success, failure or none, got 'sucess' (column 10)",
        "  label == sucess or steps > 3",
        "           ^",
    ]


def test_commit_query_freezes_exactly_those_episodes_and_records_the_query(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    query = "label == failure and task ~ stack"
    assert _run(root, "data", "commit", "fails-v1", "--query", query, "-m", "stacking failures") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"query {query}: 2 episode(s) match\ntagged fails-v1 -> version ")
    with Store.open(root) as other:  # another connection sees it
        version = other.resolve("fails-v1")
    assert [e.episode_id for e in version.manifest.episodes] == ["ep1", "ep2"]
    assert version.message == "stacking failures"
    assert version.manifest.created_from == {"selection": "query", "query": query}
    entries = {e.episode_id: e for e in version.manifest.episodes}
    assert entries["ep2"].outcome == "failure" and entries["ep2"].labels  # the relabelling is pinned

    assert _run(root, "data", "log", "fails-v1") == 0
    log = capsys.readouterr().out
    assert "  message   stacking failures\n" in log and f"  query     {query}\n" in log
    assert _run(root, "data", "show", "fails-v1") == 0
    assert f"query     {query}\n" in capsys.readouterr().out


def test_commit_query_with_parent_and_errors(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(root, "data", "commit", "all-v1") == 0  # the other ways of committing still work
    assert _run(root, "data", "commit", "--tag", "two-v1", "--episodes", "ep0", "ep1") == 0
    assert _run(root, "data", "commit", "bo-v1", "--query", "operator == bo", "--parent", "all-v1") == 0
    capsys.readouterr()
    assert _run(root, "data", "log", "bo-v1") == 0
    log = capsys.readouterr().out
    assert log.index("bo-v1") < log.index("all-v1")  # lineage: the parent follows
    with Store.open(root) as other:
        assert [e.episode_id for e in other.episodes_in("bo-v1")] == ["ep4", "ep5"]

    assert _run(root, "data", "commit", "bo-v1", "--query", "operator == bo") == 2
    assert "tag 'bo-v1'" in capsys.readouterr().err
    assert _run(root, "data", "commit", "x-v1", "--query", "steps > 100") == 2
    assert capsys.readouterr().err.strip() == (
        "error: nothing to commit: the query matches no episodes ('steps > 100')"
    )
    assert _run(root, "data", "commit", "x-v1", "--query", "steps > 1", "--remove", "ep1") == 2
    assert "--query chooses the episodes; it does not go with --remove" in capsys.readouterr().err
    assert _run(root, "data", "commit", "x-v1", "--query", "steps >> 1") == 2
    assert capsys.readouterr().err.splitlines()[1:] == ["  steps >> 1", "         ^"]
    with Store.open(root) as other:
        assert [t.name for t in other.tags()] == ["all-v1", "two-v1", "bo-v1"]


def test_curate_without_a_display_says_what_to_use_instead(root: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    done = subprocess.run(
        [sys.executable, "-m", "takeover.app.cli", "curate", "--store", str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "no display available for the curation screen" in done.stderr
    assert "takeover data query" in done.stderr
