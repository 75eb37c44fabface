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
