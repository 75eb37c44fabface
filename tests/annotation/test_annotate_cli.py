"""`takeover annotate smooth` and `takeover annotate plot-boundary` against a real store."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from takeover.annotation.derivations import list_derivations, load_smoothed
from takeover.annotation.params import SmoothingParams
from takeover.app.cli import main
from takeover.storage.store import Store
from takeover.storage.testing import make_episode

from .helpers import H, P, build_episode


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    with Store.create(root) as store:
        store.add_episode(
            build_episode(
                [P] * 10 + [H] * 20 + [P] * 10, idle=range(10, 18), frames=list(range(40)), episode_id="a"
            )
        )
        store.add_episode(make_episode("b", 20, seed=1))
        store.commit("v1", ["a"])
    return root


def test_smooth_all_then_again(store_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["annotate", "smooth", "--store", str(store_root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].startswith("[1/2] a: 2 boundaries, 8 steps removed (0.40 s)")
    assert out[1].startswith("[2/2] b: 0 boundaries") and out[1].split("; ")[1].startswith("stored as ")
    assert main(["annotate", "smooth", "--store", str(store_root)]) == 0
    assert all("already stored" in line for line in capsys.readouterr().out.splitlines())
    with Store.open(store_root) as store:
        assert len(list_derivations(store)) == 2


def test_smooth_by_tag_and_params_file(store_root: Path, tmp_path: Path, capsys) -> None:
    f = tmp_path / "p.toml"
    f.write_text("[smoothing]\nmax_time_shift_s = 0.2\n")
    assert main(["annotate", "smooth", "--store", str(store_root), "--tag", "v1", "--params", str(f)]) == 0
    assert capsys.readouterr().out.startswith("[1/1] a: 2 boundaries, 4 steps removed (0.20 s)")
    with Store.open(store_root) as store:
        assert load_smoothed(store, "a", SmoothingParams(max_time_shift_s=0.2)) is not None
        assert load_smoothed(store, "a") is None


def test_plot_boundary_writes_a_png(store_root: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "b.png"
    assert main(["annotate", "plot-boundary", "a", "--out", str(out), "--store", str(store_root)]) == 0
    img = cv2.imread(str(out))
    assert img is not None and img.shape[1] == 1400 and img.shape[0] > 700
    assert "takeover at step 10 of a" in capsys.readouterr().out
    assert (
        main(
            [
                "annotate",
                "plot-boundary",
                "a",
                "--boundary",
                "1",
                "--out",
                str(out),
                "--store",
                str(store_root),
            ]
        )
        == 0
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["annotate", "smooth", "--episodes", "nope"], "nope"),
        (["annotate", "smooth", "--tag", "v9"], "unknown tag 'v9'"),
        (
            ["annotate", "plot-boundary", "a", "--boundary", "5", "--out", "{tmp}/x.png"],
            "boundary 5 does not exist",
        ),
        (["annotate", "plot-boundary", "b", "--out", "{tmp}/x.png"], "no takeover or hand-back"),
        (["annotate", "plot-boundary", "a", "--out", "{tmp}/x.jpg"], ".png"),
        (["annotate", "smooth", "--params", "{tmp}/missing.toml"], "does not exist"),
    ],
)
def test_user_errors_are_one_line(
    store_root: Path, tmp_path: Path, capsys, argv: list[str], message: str
) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv] + ["--store", str(store_root)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err


def test_missing_store_is_a_user_error(tmp_path: Path, capsys) -> None:
    assert main(["annotate", "smooth", "--store", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.startswith("error: no dataset store")


def test_derive_labels_of_a_tag_then_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from takeover.annotation.derivation_catalog import list_derivations as all_derivations
    from takeover.annotation.training_params import TrainingLabelParams
    from takeover.annotation.training_store import load_training_labels

    root = tmp_path / "store"
    with Store.create(root) as store:
        store.add_episode(make_episode("s", 30, seed=1, takeover_at=20))
        store.add_episode(make_episode("f", 40, seed=2, success=False, outcome="failure"))
        store.add_episode(make_episode("n", 20, seed=3, success=False, outcome="near_success"))
        store.add_episode(make_episode("x", 10, seed=4, success=True, outcome=""))
        store.commit("v1", ["s", "f", "n"])
    params = tmp_path / "labels.toml"
    params.write_text('pre_window = 4\npre_window_unit = "steps"\n')
    args = ["annotate", "derive-labels", "v1", "--store", str(root), "--params", str(params)]
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(
        "training labels of version v1: 3 episodes, 90 steps (1 success, 1 near_success, 1 failure)"
    )
    counts = {line.split()[0]: int(line.split()[1]) for line in out[1:6]}
    assert counts == {"policy": 76, "human": 10, "hold": 0, "ramp": 0, "pre_intervention": 4}
    assert "of 80 non-human steps positive (target 30.0 %)" in out[6] and "baseline (3 episodes)" in out[6]
    assert out[7] == "stored for 3 episodes (derivation training_labels)"
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "already stored (derivation training_labels)"
    with Store.open(root) as store:
        labels = {"s": "success", "f": "failure", "n": "near_success"}
        p = TrainingLabelParams(pre_window=4, pre_window_unit="steps")
        assert load_training_labels(store, list(labels), p, labels) is not None
        assert len(all_derivations(store, name="training_labels")) == 3
    # Episodes by id; one without the operator's verdict takes the station's flag.
    assert main(["annotate", "derive-labels", "x", "s", "--store", str(root)]) == 0
    assert "2 episodes, 40 steps (2 success, 0 near_success, 0 failure)" in capsys.readouterr().out
    # Named episodes take the label that counts now: an annotator's relabelling.
    assert main(["label", "s", "--outcome", "near-success", "--annotator", "bo", "--store", str(root)]) == 0
    assert main(["annotate", "derive-labels", "x", "s", "--store", str(root)]) == 0
    assert "2 episodes, 40 steps (1 success, 1 near_success, 0 failure)" in capsys.readouterr().out


def test_derive_labels_errors_are_one_line(store_root: Path, tmp_path: Path, capsys) -> None:
    assert main(["annotate", "derive-labels", "nope", "--store", str(store_root)]) == 2
    assert capsys.readouterr().err.strip() == "error: no episode 'nope' in the catalog"
    bad = tmp_path / "bad.toml"
    bad.write_text("failure_penalty = 0.2\n")
    assert main(["annotate", "derive-labels", "v1", "--store", str(store_root), "--params", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bad}: failure_penalty must be >= 1") and "\n" not in err
