"""`takeover data export TAG --format robomimic`: read back with h5py alone and checked against
the recorded episodes (decoded here, not by the exporter), the on-disk layout against a golden
file, the filter keys, the folder that appears only when complete, and the one-line errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from takeover.app.cli import main
from takeover.storage.exports import robomimic
from takeover.storage.store import Store
from takeover.storage.testing import make_episode

GOLDEN = Path(__file__).with_name("golden") / "robomimic_layout.json"


def _layout(f: h5py.File) -> dict[str, str]:
    """Every group and dataset: name -> dtype and shape (the first demo stands for all)."""
    out: dict[str, str] = {}

    def visit(name: str, obj: object) -> None:
        if name.startswith("data/demo_") and not name.startswith("data/demo_0"):
            return
        if isinstance(obj, h5py.Dataset):
            out[name] = f"{obj.dtype.str} {list(obj.shape)}"
        else:
            out[name] = "group"

    f.visititems(visit)
    return out


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    with Store.create(root) as st:
        st.add_episode(make_episode("a-ok", 12, seed=1, cameras=("front", "wrist"), image_size=(24, 32)))
        st.add_episode(
            make_episode(
                "b-near",
                9,
                seed=2,
                cameras=("front", "wrist"),
                image_size=(24, 32),
                outcome="near_success",
                takeover_at=4,
                first_frame_step=2,
            )
        )
        st.add_episode(
            make_episode(
                "c-fail",
                10,
                seed=3,
                cameras=("front", "wrist"),
                image_size=(24, 32),
                outcome="failure",
                success=False,
                takeover_at=0,
            )
        )
        st.commit("v1")
        st.commit("v1-trim", parent="v1", trim={"a-ok": (2, 10)})
    return root


def _rgb(jpeg: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_robomimic_export_reads_back_with_h5py(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert (
        main(["data", "export", "v1-trim", "--format", "robomimic", "--out", str(out), "--store", str(store)])
        == 0
    )
    captured = capsys.readouterr()
    # b-near's cameras start at step 2: said, not filled silently.
    assert "camera front has no frame yet for the first 2 step(s) of 1 episode (b-near)" in captured.err
    provenance = json.loads((out / "provenance.json").read_text())
    with Store.open(store) as st:
        version = st.resolve("v1-trim")
        episodes = {e: st.read_episode(e) for e in ("a-ok", "b-near", "c-fail")}
    assert provenance["version"] == version.digest and provenance["tag"] == "v1-trim"
    assert provenance["format"] == "robomimic" and provenance["episodes"] == ["a-ok", "b-near", "c-fail"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []

    with h5py.File(out / "demo.hdf5", "r") as f:
        layout = _layout(f)
        if os.environ.get("TAKEOVER_WRITE_GOLDEN"):
            GOLDEN.write_text(json.dumps(layout, indent=1, sort_keys=True) + "\n")
        assert layout == json.loads(GOLDEN.read_text())
        data = f["data"]
        assert data.attrs["total"] == 8 + 9 + 10
        assert json.loads(data.attrs["env_args"])["env_name"] == "pick the red cube"
        ranges = {"a-ok": (2, 10), "b-near": (0, 9), "c-fail": (0, 10)}
        for i, (eid, (start, stop)) in enumerate(ranges.items()):
            g, ep = data[f"demo_{i}"], episodes[eid]
            n = stop - start
            assert g.attrs["episode_id"] == eid and g.attrs["num_samples"] == n
            np.testing.assert_array_equal(g["actions"][()], ep.action[start:stop])
            np.testing.assert_array_equal(g["obs/state"][()], ep.state[start:stop])
            np.testing.assert_array_equal(g["next_obs/state"][()][:-1], ep.state[start + 1 : stop])
            np.testing.assert_array_equal(g["obs/control_source"][()][:, 0], ep.control_source[start:stop])
            assert g["obs/intervention"][()][:, 0].tolist() == (ep.control_source[start:stop] == 1).tolist()
            proposed = ep.proposed_action[start:stop]
            has = ~np.isnan(proposed).any(axis=1)
            assert g["obs/proposed_action_valid"][()][:, 0].tolist() == has.tolist()
            np.testing.assert_array_equal(g["obs/proposed_action"][()][has], proposed[has])
            assert not g["obs/proposed_action"][()][~has].any()
            assert g["dones"][()].tolist() == [0] * (n - 1) + [1]
            assert g["rewards"][()][-1] == (1.0 if eid == "a-ok" else 0.0)
            for cam in ("front", "wrist"):
                stream = ep.cameras[cam]
                images, valid = g[f"obs/{cam}_image"][()], g[f"obs/{cam}_image_valid"][()][:, 0]
                assert images.shape == (n, 24, 32, 3) and images.dtype == np.uint8
                for k, step in enumerate(range(start, stop)):
                    earlier = np.flatnonzero(np.asarray(stream.step_index) <= step)
                    if not len(earlier):
                        assert not valid[k] and not images[k].any()
                        continue
                    assert valid[k]
                    np.testing.assert_array_equal(images[k], _rgb(stream.frames[int(earlier[-1])]))
        masks = {k: sorted(v.decode() for v in f[f"mask/{k}"][()]) for k in f["mask"]}
    assert masks == {
        "success": ["demo_0"],
        "near_success": ["demo_1"],
        "failure": ["demo_2"],
        "has_intervention": ["demo_1", "demo_2"],
        "human_only": ["demo_2"],
    }


def test_filters_choose_the_episodes(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "ok"
    args = ["--format", "robomimic", "--store", str(store), "--labels", "success,failure"]
    assert main(["data", "export", "v1", "--out", str(out), *args]) == 0
    with h5py.File(out / "demo.hdf5", "r") as f:
        assert sorted(f["data"][d].attrs["episode_id"] for d in f["data"]) == ["a-ok", "c-fail"]


def _one_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_mixed_dimensions_an_existing_folder_and_a_failed_export_are_one_line(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store.open(store) as st:
        st.add_episode(make_episode("d-wide", 6, seed=4, state_dim=9))
        st.commit("mixed", ["a-ok", "d-wide"])
    out = tmp_path / "out"
    base = ["--format", "robomimic", "--out", str(out), "--store", str(store)]
    assert main(["data", "export", "mixed", *base]) == 2
    err = _one_error(capsys)
    assert "state dimension" in err and "5 (a-ok)" in err and "9 (d-wide)" in err and not out.exists()
    assert main(["data", "export", "nope", *base]) == 2
    assert "unknown tag" in _one_error(capsys)
    assert main(["data", "export", "v1", *base, "--episodes", "zz"]) == 2
    assert "does not hold: zz" in _one_error(capsys)
    out.mkdir()
    assert main(["data", "export", "v1", *base]) == 2
    assert "already exists" in _one_error(capsys)
    out.rmdir()

    def broken(*args: object, **kw: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(robomimic, "write", broken)
    assert main(["data", "export", "v1", *base]) == 2
    assert "cannot write the export" in _one_error(capsys)
    # Nothing that looks finished, and no temporary folder left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
