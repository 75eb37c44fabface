"""Pinned training labels through the real command line: label a batch, freeze `v2` with
`data commit --derived training_labels`, pull it with the derived keys, `data diff`, a child that
pins its own (or says it pins none), `annotate derive-labels TAG --commit NEW`, and the one-line
errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from takeover.app.cli import main
from takeover.storage.store import Store
from takeover.storage.testing import make_episode


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "store"
    with Store.create(r) as s:
        s.add_episode(make_episode("ep-a", 12, seed=1, takeover_at=6))
        s.add_episode(make_episode("ep-b", 9, seed=2, outcome="failure", success=False))
        s.add_episode(make_episode("ep-c", 10, seed=3, outcome="near_success", takeover_at=3))
        s.add_episode(make_episode("ep-d", 8, seed=4))
    return r


def _run(root: Path, *argv: str) -> int:
    return main([*argv, "--store", str(root)])


def test_label_freeze_with_training_labels_and_pull_them(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from takeover.storage.pull import KeyChoiceError, pull

    assert _run(root, "data", "commit", "v1", "--episodes", "ep-a", "ep-b", "ep-c") == 0
    assert _run(root, "label", "ep-b", "--outcome", "near-success", "--annotator", "bo") == 0
    capsys.readouterr()
    params = tmp_path / "labels.toml"
    params.write_text("[training_labels]\npositive_fraction = 0.5\n")
    argv = ["data", "commit", "v2", "--episodes", "ep-a", "ep-b", "ep-c", "--derived", "training_labels"]
    assert _run(root, *argv, "--derived-params", str(params)) == 0
    out = capsys.readouterr().out
    assert "training labels of version v2: 3 episodes, 31 steps (1 success, 2 near_success, 0 failure)" in out
    assert "(target 50.0 %)" in out and "stored for 3 episodes (derivation training_labels)" in out
    assert "pinned in each entry's `derivations`: pull keys control_class, value_target, improvement" in out
    ds = pull("v2", root, tmp_path / "cache", keys=["control_class", "value_target", "improvement"])
    item = ds[0]
    assert sorted(item) == ["control_class", "improvement", "value_target"]
    assert _run(root, "data", "diff", "v1", "v2") == 0
    lines = capsys.readouterr().out.splitlines()
    assert "~ ep-b  relabelled failure -> near_success (labels lead:5)" in lines
    assert "* ep-a  re-derived (derivations)" in lines
    # A child without --derived pins none, and says so; with it, it pins its own.
    assert _run(root, "data", "commit", "v3", "--parent", "v2", "--add", "ep-d") == 0
    assert "v2 pins training labels, derived for its episodes; v3 pins none" in capsys.readouterr().out
    with pytest.raises(KeyChoiceError, match="version v3 pins no training labels"):
        pull("v3", root, tmp_path / "cache", keys=["improvement"])
    assert (
        _run(root, "data", "commit", "v4", "--parent", "v2", "--add", "ep-d", "--derived", "training_labels")
        == 0
    )
    assert "training labels of version v4: 4 episodes" in capsys.readouterr().out
    assert len(pull("v4", root, tmp_path / "cache", keys=["improvement"])) == 39
    # An old version's episodes frozen again with their labels pinned.
    assert _run(root, "annotate", "derive-labels", "v1", "--commit", "v1-labels", "-m", "for training") == 0
    out = capsys.readouterr().out
    assert "training labels of version v1: 3 episodes, 31 steps (1 success, 1 near_success, 1 failure)" in out
    assert "tagged v1-labels -> version " in out and "the 3 episodes of v1, each pinning" in out
    with Store.open(root) as s:
        pinned = s.resolve("v1-labels")
        assert pinned.message == "for training" and pinned.manifest.parent == s.resolve("v1").digest
        assert [e.outcome for e in pinned.manifest.episodes] == [e.outcome for e in s.episodes_in("v1")]
    assert _run(root, "data", "show", "v1-labels") == 0
    assert "derived   training_labels: pinned for 3 of 3 episodes" in capsys.readouterr().out.splitlines()
    assert _run(root, "data", "show", "v1") == 0
    assert "derived" not in capsys.readouterr().out
    assert _run(root, "data", "fsck") == 0


def test_mistakes_are_one_line(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("horizon_steps = 5\n")
    assert _run(root, "data", "commit", "v1", "--derived-params", str(bad)) == 2
    assert capsys.readouterr().err == (
        "error: --derived-params gives the parameters of --derived training_labels: add that\n"
    )
    assert (
        _run(root, "data", "commit", "v1", "--derived", "training_labels", "--derived-params", str(bad)) == 2
    )
    err = capsys.readouterr().err
    assert (
        err.startswith("error: cannot derive the version's training labels: an episode of ")
        and err.count("\n") == 1
    )
    bad.write_text("failure_penalty = 0.5\n")
    assert (
        _run(root, "data", "commit", "v1", "--derived", "training_labels", "--derived-params", str(bad)) == 2
    )
    assert "failure_penalty must be >= 1" in capsys.readouterr().err
    assert _run(root, "data", "commit", "v1", "--derived", "smoothing") == 2
    assert "invalid choice: 'smoothing'" in capsys.readouterr().err
    with Store.open(root) as s:
        assert s.tags() == []  # nothing was frozen
    assert _run(root, "data", "commit", "v1") == 0
    assert _run(root, "annotate", "derive-labels", "ep-a", "ep-b", "--commit", "v2") == 2
    assert capsys.readouterr().err.endswith("--commit freezes one version's episodes again: name one tag\n")
    assert _run(root, "annotate", "derive-labels", "v1", "--commit", "v1") == 2
    assert capsys.readouterr().err.startswith("error: tag 'v1' already exists")
