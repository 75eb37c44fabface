"""Labels through the real command line (`main()`): `takeover label`, `data show EPISODE` with the
history, agreement and the label that counts, `data list` with one label and its source, its
filters and sorts, and versions that freeze the resolved labels (`data commit --resolve`, `data
diff`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from takeover.app.cli import main
from takeover.storage.schema import Event, EventKind
from takeover.storage.store import Store
from takeover.storage.testing import make_episode


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """ep-a: the operator said success, one takeover; ep-b: no verdict at all; ep-c: only the
    station's flag (failure), two takeovers."""
    r = tmp_path / "store"
    with Store.create(r) as s:
        s.add_episode(make_episode("ep-a", 7, seed=1, takeover_at=3, task="stack blocks"))
        s.add_episode(make_episode("ep-b", 4, seed=2, success=None, outcome=""))
        ep_c = make_episode("ep-c", 9, seed=3, success=False, outcome="", takeover_at=2)
        t = ep_c.events[1].t
        ep_c.events[-1:-1] = [
            Event(EventKind.HANDBACK, 4, t + 0.2),
            Event(EventKind.TAKEOVER, 6, t + 0.4, "again"),
        ]
        s.add_episode(ep_c)
    return r


def _run(root: Path, *argv: str) -> int:
    return main([*argv, "--store", str(root)])


def _rows(out: str) -> dict[str, dict[str, str]]:
    """`data list`'s table as {id: {column: cell}}, cut at the columns' positions under the headers."""
    header, *lines = out.splitlines()
    names = header.split()
    starts = [header.index(f"{n}") if i == 0 else header.index(f"  {n}") + 2 for i, n in enumerate(names)]
    bounds = [*starts[1:], None]
    rows = {}
    for line in lines:
        if line.startswith(" ") or "deleted episode" in line:
            continue
        cells = {n: line[a:b].strip() for n, a, b in zip(names, starts, bounds, strict=True)}
        rows[cells["id"]] = cells
    return rows


def test_label_appends_a_revision_and_prints_it_with_the_label_that_counts(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["label", "ep-a", "ep-c", "--outcome", "near-success", "--progress", "80", "--note", "late"]
    assert _run(root, *argv, "--tag", "grasp", "--tag", "slow", "--annotator", "bo") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("ep-a: revision 3 (edits 1) by bo as annotator, ")
    assert out[0].endswith(": near-success, progress 80 %; tags grasp, slow; notes: late")
    # A reviewer's word replaces the operator's verdict (and the station's flag), either way.
    assert (
        out[1]
        == "  the label that counts (rule lead): near-success, progress 80 %: the annotator's (revision 3)"
    )
    assert out[2].startswith("ep-c: revision 4 (edits 2) by bo")
    assert "near-success, progress 80 %: the annotator's (revision 4)" in out[3]
    assert _run(root, "label", "ep-a", "--outcome", "near_success", "--annotator", "bo") == 0
    assert "revision 5 (edits 3) by bo" in capsys.readouterr().out  # bo edits bo's own revision
    assert _run(root, "label", "ep-a", "--outcome", "success", "--quality", "side-effects", "--lead") == 0
    out = capsys.readouterr().out
    assert "as lead" in out and "success (side-effects): the lead's word (revision 6)" in out
    with Store.open(root) as s:
        history = s.labels.history("ep-a")
    assert [(r.id, r.parent_id, r.outcome, r.quality, r.role) for r in history] == [
        (1, None, "success", None, "operator"),
        (3, 1, "near_success", None, "annotator"),
        (5, 3, "near_success", None, "annotator"),
        (6, 5, "success", "side_effects", "lead"),
    ]
    assert history[1].tags == ("grasp", "slow") and history[1].progress == 80 and history[1].notes == "late"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ghost", "ep-a", "--outcome", "success"], "no such episode(s) in the catalog: ghost"),
        (["ep-a", "--outcome", "nearly"], "an outcome is success, near-success or failure, got 'nearly'"),
        (["ep-a", "--outcome", "failure", "--quality", "clean"], "a quality is for successes only"),
        (
            ["ep-a", "--outcome", "success", "--category", "collision"],
            "a failure category is for failures only",
        ),
        (["ep-a", "--outcome", "failure", "--category", "spilled"], "unknown failure category 'spilled'"),
        (["ep-a", "--outcome", "success", "--progress", "101"], "0 to 100, got 101"),
        (["ep-a", "--outcome", "success", "--progress", "lots"], "--progress: invalid int value: 'lots'"),
        (["ep-a", "--outcome", "success", "--quality", "shiny"], "--quality: invalid choice: 'shiny'"),
        (["ep-a", "--outcome", "success", "--tag", "two words"], "a tag is a word"),
        (["ep-a"], "the following arguments are required: --outcome"),
    ],
)
def test_label_mistakes_are_one_line_and_exit_2_with_nothing_written(
    root: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert _run(root, "label", *argv, "--annotator", "bo") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    with Store.open(root) as s:
        assert [len(h) for h in s.labels.heads().values()] == [1, 1]


def test_the_categories_and_the_annotator_come_from_the_configuration(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[labels]\nfailure_categories = ["spilled", "late"]\n[operator]\nname = "grace"\n')
    monkeypatch.setenv("TAKEOVER_CONFIG", str(config))
    assert _run(root, "label", "ep-a", "--outcome", "failure", "--category", "spilled") == 0
    assert "by grace as annotator" in capsys.readouterr().out
    assert _run(root, "label", "ep-a", "--outcome", "failure", "--category", "collision") == 2
    assert "the categories are spilled, late" in capsys.readouterr().err
    config.write_text('[labels]\nfailure_categories = ["a", "a"]\n')
    assert _run(root, "label", "ep-a", "--outcome", "failure") == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1 and "labels.failure_categories: the failure categories must be distinct" in err
    )


def test_data_show_an_episode_with_its_labels_history_agreement_and_resolution(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        _run(root, "label", "ep-a", "--outcome", "failure", "--category", "collision", "--annotator", "bo")
        == 0
    )
    assert (
        _run(root, "label", "ep-a", "--outcome", "near-success", "--progress", "70", "--annotator", "cy") == 0
    )
    capsys.readouterr()
    assert _run(root, "data", "show", "ep-a") == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "episode   ep-a" and "task      stack blocks" in lines
    assert (
        "label     failure: collision: majority, 1 of 2 annotators: a tie, which goes to the more cautious "
        "outcome (revisions 3)" in lines
    )
    assert "          rule lead; 2 voting annotator(s), agreement 0.50; in the disagreement queue" in lines
    at = lines.index("label history (oldest first; * = the annotator's current revision)")
    assert lines[at + 1].split() == [
        "rev",
        "parent",
        "annotator",
        "role",
        "time",
        "label",
        "progress",
        "tags",
        "notes",
    ]
    history = [ln.split() for ln in lines[at + 2 : at + 5]]
    assert [h[:4] for h in history] == [
        ["1*", "-", "ada", "operator"],
        ["3*", "1", "bo", "annotator"],
        ["4*", "3", "cy", "annotator"],
    ]
    assert history[1][6:9] == ["failure:", "collision", "-"] and history[2][6:8] == ["near-success", "70"]
    assert "3     0.300  takeover  gripper slipped" in out  # the events, timed from the start
    # A lead settles it; its revision is then the one that counts, under the default rule only.
    assert _run(root, "label", "ep-a", "--outcome", "success", "--lead", "--annotator", "di") == 0
    capsys.readouterr()
    assert _run(root, "data", "show", "ep-a") == 0
    out = capsys.readouterr().out
    assert "label     success: the lead's word (revision 5)" in out and "disagreement queue" not in out
    assert _run(root, "data", "show", "ep-a", "--resolve", "majority") == 0
    # Under majority the three reviewers (not the operator) vote one each: the most cautious.
    assert (
        "label     failure: collision: majority, 1 of 3 annotators: a tie, which goes to the more cautious "
        "outcome (revisions 3)" in capsys.readouterr().out
    )
    assert _run(root, "data", "show", "ep-a", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["resolved"] == {
        "outcome": "success",
        "rule": "lead",
        "source": "lead",
        "revisions": [5],
        "tie": False,
    }
    assert [r["id"] for r in doc["labels"]] == [1, 3, 4, 5] and doc["agreement"] == pytest.approx(1 / 3)
    assert doc["episode"]["episode_id"] == "ep-a" and [e["kind"] for e in doc["events"]] == [
        "start",
        "takeover",
        "end",
    ]
    # Only the station's flag, and nothing at all.
    assert _run(root, "data", "show", "ep-c") == 0
    assert "label     failure: the station's success flag (revision 2)" in capsys.readouterr().out
    assert _run(root, "data", "show", "ep-b") == 0
    assert "label     none (no verdict, no revision)" in capsys.readouterr().out


def test_data_show_tells_tags_from_episodes_and_says_when_a_name_is_both(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(root, "data", "commit", "v1") == 0
    assert _run(root, "data", "commit", "ep-a", "--episodes", "ep-b") == 0  # a tag named like an episode
    capsys.readouterr()
    assert _run(root, "data", "show", "v1") == 0
    assert capsys.readouterr().out.startswith("tag       v1\n")
    assert _run(root, "data", "show", "ep-a") == 2
    err = capsys.readouterr().err
    assert err == (
        "error: 'ep-a' is both a tag and an episode id: `data show --tag ep-a` shows the version, "
        "`data show --episode ep-a` the episode\n"
    )
    assert _run(root, "data", "show", "--tag", "ep-a") == 0
    assert capsys.readouterr().out.startswith("tag       ep-a\n")
    assert _run(root, "data", "show", "--episode", "ep-a") == 0
    assert capsys.readouterr().out.startswith("episode   ep-a\n")
    assert _run(root, "data", "show", "nope") == 2
    assert (
        capsys.readouterr().err
        == "error: unknown tag 'nope'; known tags: ep-a, v1 (and no episode has that id)\n"
    )
    assert _run(root, "data", "show", "--episode", "v1") == 2
    assert "no episode 'v1'" in capsys.readouterr().err


def test_data_list_shows_one_label_with_its_source_and_filters_and_sorts(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(root, "data", "list") == 0
    rows = _rows(capsys.readouterr().out)
    assert list(rows) == ["ep-a", "ep-b", "ep-c"]
    assert {k: (r["label"], r["source"], r["agree"]) for k, r in rows.items()} == {
        "ep-a": ("success", "operator", "1/1"),
        "ep-b": ("-", "-", "-"),
        "ep-c": ("failure", "station", "1/1"),
    }
    assert (rows["ep-a"]["operator"], rows["ep-a"]["steps"], rows["ep-a"]["duration"]) == ("ada", "7", "0.7")
    assert rows["ep-c"]["takeovers"] == "2" and not {"success", "outcome"} & rows["ep-a"].keys()
    assert _run(root, "label", "ep-a", "--outcome", "failure", "--annotator", "bo") == 0
    assert _run(root, "label", "ep-a", "--outcome", "success", "--annotator", "cy") == 0
    assert _run(root, "label", "ep-c", "--outcome", "near-success", "--annotator", "bo", "--lead") == 0
    capsys.readouterr()

    def listed(*argv: str) -> dict[str, dict[str, str]]:
        assert _run(root, "data", "list", *argv) == 0
        return _rows(capsys.readouterr().out)

    rows = listed()
    assert [(r["label"], r["source"], r["agree"]) for r in rows.values()] == [
        ("failure", "majority", "1/2"),
        ("-", "-", "-"),
        ("near-success", "lead", "1/1"),
    ]
    assert list(listed("--label", "near-success")) == ["ep-c"]
    assert list(listed("--label", "none")) == ["ep-b"]
    assert list(listed("--label", "failure", "--resolve", "majority")) == ["ep-a"]
    assert list(listed("--annotator", "bo")) == ["ep-a", "ep-c"]
    assert list(listed("--disagreements")) == ["ep-a"]  # ep-c's lead settled it
    assert list(listed("--sort", "label")) == ["ep-a", "ep-c", "ep-b"]  # failure first, unlabelled last
    assert list(listed("--sort", "interventions", "--reverse")) == ["ep-c", "ep-a", "ep-b"]
    assert list(listed("--sort", "duration")) == ["ep-b", "ep-a", "ep-c"]
    assert list(listed("--task", "stack blocks")) == ["ep-a"]
    assert _run(root, "data", "list", "--label", "nope") == 2
    assert (
        "--label: an outcome is success, near-success or failure, got 'nope', or none"
        in capsys.readouterr().err
    )
    assert _run(root, "data", "list", "--operator", "nobody") == 0
    assert capsys.readouterr().out == "no episodes match\n"


def test_versions_freeze_the_resolved_labels_and_diff_shows_the_relabelling(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import h5py

    from takeover.storage.exports.common import label_of
    from takeover.storage.pull import pull

    assert _run(root, "data", "commit", "v1") == 0
    assert "labels:" not in capsys.readouterr().out
    with Store.open(root) as s:
        v1 = s.resolve("v1").manifest
        # Nothing relabelled: the entries are the operator's verdicts, as before labels existed.
        assert [(e.outcome, e.success, e.labels) for e in v1.episodes] == [
            ("success", True, ""),
            ("", None, ""),
            ("", False, ""),
        ]
    assert (
        _run(root, "label", "ep-a", "--outcome", "failure", "--category", "collision", "--annotator", "bo")
        == 0
    )
    assert _run(root, "label", "ep-c", "--outcome", "near-success", "--annotator", "di", "--lead") == 0
    capsys.readouterr()
    assert _run(root, "data", "commit", "v2") == 0
    out = capsys.readouterr().out
    assert "labels: 2 episode(s) take the label their annotators' revisions resolve to (rule lead" in out
    assert _run(root, "data", "commit", "v3", "--resolve", "majority") == 0
    capsys.readouterr()
    with Store.open(root) as s:
        v2, v3 = s.resolve("v2").manifest, s.resolve("v3").manifest
    assert [(e.episode_id, e.outcome, e.labels) for e in v2.episodes] == [
        ("ep-a", "failure", "lead:3"),  # no lead: the majority, a tie going to the more cautious
        ("ep-b", "", ""),
        ("ep-c", "near_success", "lead:4"),  # the lead's word
    ]
    assert [(e.episode_id, e.outcome, e.labels) for e in v3.episodes] == [
        ("ep-a", "failure", "majority:3"),
        ("ep-b", "", ""),
        ("ep-c", "near_success", "majority:4"),  # the one reviewer's word; the station's flag does not vote
    ]
    assert [e.success for e in v2.episodes] == [e.success for e in v1.episodes]  # the station's flags stay
    assert _run(root, "data", "diff", "v1", "v2") == 0
    lines = capsys.readouterr().out.splitlines()
    assert "~ ep-a  relabelled success -> failure (labels lead:3)" in lines
    assert "~ ep-c  relabelled failure -> near_success (labels lead:4)" in lines
    assert "added 0, removed 0, relabelled 2, re-derived 0, trimmed 0" in lines
    totals = {ln.split()[0]: ln.split()[1:] for ln in lines[lines.index("") + 2 :]}
    assert totals["success"] == ["1", "->", "0", "(-1)"] and totals["near_success"] == [
        "0",
        "->",
        "1",
        "(+1)",
    ]
    assert _run(root, "data", "diff", "v2", "v3") == 0
    lines = capsys.readouterr().out.splitlines()
    assert "~ ep-c  relabelled near_success (labels lead:4) -> near_success (labels majority:4)" in lines
    assert _run(root, "data", "show", "v2") == 0
    rows = [ln.split() for ln in capsys.readouterr().out.splitlines() if ln.startswith(("id ", "ep-"))]
    assert [r[:4] for r in rows] == [
        ["id", "steps", "label", "from"],
        ["ep-a", "7", "failure", "lead:3"],
        ["ep-b", "4", "-", "verdict"],
        ["ep-c", "9", "near_success", "lead:4"],
    ]
    # What training reads: the exports' label and the pulled `success` follow the version's labels.
    assert [label_of(e) for e in v2.episodes] == ["failure", "failure", "near_success"]
    out_dir = tmp_path / "robomimic"
    assert _run(root, "data", "export", "v2", "--format", "robomimic", "--out", str(out_dir)) == 0
    with h5py.File(out_dir / "demo.hdf5") as f:
        exported = {str(g.attrs["episode_id"]): str(g.attrs["label"]) for g in f["data"].values()}
    assert exported == {"ep-a": "failure", "ep-b": "failure", "ep-c": "near_success"}
    for tag, first in (("v1", True), ("v2", False)):
        ds = pull(tag, root, cache_dir=tmp_path / "cache")
        assert bool(ds[0]["success"]) is first and int(ds[0]["episode_index"]) == 0
        ds.close()
