"""`takeover data export TAG --format zarr [--videos]`: the diffusion_policy replay buffer read
back with zarr alone (and its format 2 metadata files as JSON) and checked against the recorded
episodes (frames decoded here, not by the exporter); the videos read back with PyAV; the on-disk
layout against a golden file; the one-line errors."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import zarr

from takeover.app.cli import main
from takeover.storage.exports import zarr_replay
from takeover.storage.schema import Episode
from takeover.storage.store import Store
from takeover.storage.testing import make_episode
from takeover.storage.video import VideoError

GOLDEN = Path(__file__).with_name("golden") / "zarr_layout.json"
SIZE = (23, 31)
"""Odd on purpose: a video pads it to an even size, and the export must still give it back."""
RANGES = {"a-ok": (2, 10), "b-near": (0, 9), "c-fail": (0, 10)}
"""The step ranges of ``v1-trim``, in version order."""


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    cams = ("front", "wrist")
    with Store.create(root) as st:
        st.add_episode(make_episode("a-ok", 12, seed=1, cameras=cams, image_size=SIZE))
        st.add_episode(
            make_episode(
                "b-near",
                9,
                seed=2,
                cameras=cams,
                image_size=SIZE,
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
                cameras=cams,
                image_size=SIZE,
                outcome="failure",
                success=False,
                takeover_at=0,
            )
        )
        st.commit("v1")
        st.commit("v1-trim", parent="v1", trim={"a-ok": (2, 10)})
    return root


def _export(store: Path, out: Path, *extra: str) -> int:
    return main(
        ["data", "export", "v1-trim", "--format", "zarr", "--out", str(out), "--store", str(store), *extra]
    )


def _episodes(store: Path) -> dict[str, Episode]:
    with Store.open(store) as st:
        return {e: st.read_episode(e) for e in RANGES}


def _expected_images(ep: Episode, camera: str, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Per step, the RGB of the latest frame at or before it (zeros and False before the first)."""
    stream = ep.cameras[camera]
    images = np.zeros((stop - start, *SIZE, 3), dtype=np.uint8)
    valid = np.zeros(stop - start, dtype=bool)
    for k, step in enumerate(range(start, stop)):
        earlier = np.flatnonzero(np.asarray(stream.step_index) <= step)
        if len(earlier):
            bgr = cv2.imdecode(np.frombuffer(stream.frames[int(earlier[-1])], np.uint8), cv2.IMREAD_COLOR)
            images[k], valid[k] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), True
    return images, valid


def _layout(root: Path) -> dict[str, str]:
    """Every group and array of a zarr format 2 folder, read from its metadata files as JSON."""
    out: dict[str, str] = {}
    for meta in sorted(root.rglob(".z*")):
        name = meta.parent.relative_to(root).as_posix()
        if meta.name == ".zgroup":
            assert json.loads(meta.read_text()) == {"zarr_format": 2}
            out[name] = "group"
        elif meta.name == ".zarray":
            a = json.loads(meta.read_text())
            assert a["zarr_format"] == 2 and a["order"] == "C" and a["filters"] is None
            codec = f"{a['compressor']['id']}/{a['compressor']['cname']}" if a["compressor"] else "raw"
            out[name] = f"{a['dtype']} {a['shape']} chunks {a['chunks']} {codec}"
    return out


def test_replay_buffer_reads_back_with_zarr(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert _export(store, out) == 0
    captured = capsys.readouterr()
    assert f"{out / 'replay_buffer.zarr'}" in captured.out
    assert (
        "camera front has no frame yet for the first 2 step(s) of 1 episode (b-near): zeros there"
        in captured.err
    )
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["format"] == "zarr" and provenance["episodes"] == list(RANGES)
    assert sorted(p.name for p in out.iterdir()) == ["provenance.json", "replay_buffer.zarr"]

    path = out / "replay_buffer.zarr"
    # Format 2 only: what a zarr 2 reader (diffusion_policy's) opens; nothing of format 3.
    assert not list(path.rglob("zarr.json"))
    assert _layout(path) == json.loads(GOLDEN.read_text())

    root = zarr.open_group(str(path), mode="r")
    assert root.metadata.zarr_format == 2
    episodes = _episodes(store)
    with Store.open(store) as st:
        digest = st.resolve("v1-trim").digest
    attrs = dict(root.attrs)
    assert attrs["rate_hz"] == 10.0 and attrs["cameras"] == {"front": list(SIZE), "wrist": list(SIZE)}
    assert attrs["tag"] == "v1-trim" and attrs["version"] == digest and attrs["videos"] is None
    assert attrs["control_source"] == {"0": "policy", "1": "human", "2": "hold", "3": "ramp"}
    ends = root["meta/episode_ends"][:]
    assert ends.dtype == np.int64 and ends.tolist() == [8, 17, 27]
    assert root["meta/episode_id"][:].tolist() == list(RANGES)
    assert root["meta/episode_label"][:].tolist() == ["success", "near_success", "failure"]
    assert root["meta/episode_interventions"][:].tolist() == [0, 1, 1]
    assert root["meta/episode_start_step"][:].tolist() == [2, 0, 0]

    data = {key: root[f"data/{key}"][:] for key in root["data"].array_keys()}
    assert all(len(v) == 27 for v in data.values())
    for i, (eid, (start, stop)) in enumerate(RANGES.items()):
        ep, rows = episodes[eid], slice(int(ends[i]) - (stop - start), int(ends[i]))
        np.testing.assert_array_equal(data["action"][rows], ep.action[start:stop])
        np.testing.assert_array_equal(data["state"][rows], ep.state[start:stop])
        # NaN where the policy proposed nothing, kept as it is
        np.testing.assert_array_equal(data["proposed_action"][rows], ep.proposed_action[start:stop])
        np.testing.assert_array_equal(data["control_source"][rows], ep.control_source[start:stop])
        assert data["intervention"][rows].tolist() == (ep.control_source[start:stop] == 1).tolist()
        np.testing.assert_array_equal(data["recorded_timestamp"][rows], ep.timestamps[start:stop])
        grid = ep.timestamps[start] + np.arange(stop - start) / 10.0
        np.testing.assert_allclose(data["timestamp"][rows], grid, rtol=0, atol=1e-9)
        for cam in ("front", "wrist"):
            images, valid = _expected_images(ep, cam, start, stop)
            assert data[f"{cam}_valid"][rows].tolist() == valid.tolist()
            np.testing.assert_array_equal(data[cam][rows], images)
    assert not data["front_valid"][8:10].any()  # b-near's cameras start at its step 2


def test_videos_beside_the_replay_buffer_read_back_with_pyav(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _export(store, out, "--videos") == 0
    root = zarr.open_group(str(out / "replay_buffer.zarr"), mode="r")
    assert sorted(root["data"].array_keys()) == [
        "action",
        "control_source",
        "front_valid",
        "intervention",
        "proposed_action",
        "recorded_timestamp",
        "state",
        "timestamp",
        "wrist_valid",
    ]
    assert root.attrs["videos"]["codec"] == "av1"
    videos = out / "videos"
    assert sorted(p.relative_to(videos).as_posix() for p in videos.rglob("*")) == [
        "0",
        "0/0.mp4",
        "0/1.mp4",
        "1",
        "1/0.mp4",
        "1/1.mp4",
        "2",
        "2/0.mp4",
        "2/1.mp4",
    ]
    episodes = _episodes(store)
    ends = root["meta/episode_ends"][:]
    for i, (eid, (start, stop)) in enumerate(RANGES.items()):
        rows = slice(int(ends[i]) - (stop - start), int(ends[i]))
        for c, cam in enumerate(sorted(root.attrs["cameras"])):
            with av.open(str(videos / str(i) / f"{c}.mp4")) as container:
                frames = list(container.decode(video=0))
            assert len(frames) == stop - start
            # One frame per step at the control rate: frame k is at k / rate seconds.
            times = [round(float(f.time), 6) for f in frames]
            assert times == [round(k / 10.0, 6) for k in range(stop - start)]
            rgb = np.stack([f.to_ndarray(format="rgb24") for f in frames])
            assert rgb.shape[1:3] == (SIZE[0] + 1, SIZE[1] + 1)  # padded to even, true size in attrs
            images, valid = _expected_images(episodes[eid], cam, start, stop)
            assert root[f"data/{cam}_valid"][rows].tolist() == valid.tolist()
            cropped = rgb[:, : SIZE[0], : SIZE[1]].astype(float)
            error = np.abs(cropped - images.astype(float)).mean(axis=(1, 2, 3))
            assert error.max() < 3, f"episode {i} camera {cam}: mean abs error per frame {error.round(2)}"


def test_small_chunks_and_image_blocks_hold_the_same_steps(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole, small = tmp_path / "whole", tmp_path / "small"
    assert _export(store, whole) == 0
    monkeypatch.setattr(zarr_replay, "LOWDIM_CHUNK_BYTES", 40)
    monkeypatch.setattr(zarr_replay, "IMAGE_BLOCK_BYTES", 3 * SIZE[0] * SIZE[1] * 3)
    assert _export(store, small, "--episodes", "b-near", "c-fail") == 0
    a = zarr.open_group(str(whole / "replay_buffer.zarr"), mode="r")
    b = zarr.open_group(str(small / "replay_buffer.zarr"), mode="r")
    assert b["meta/episode_ends"][:].tolist() == [9, 19]
    assert b["meta/episode_id"][:].tolist() == ["b-near", "c-fail"]
    assert b["data/action"].chunks == (3, 3) and b["data/state"].chunks == (2, 5)  # 40 bytes of rows
    assert b["data/timestamp"].chunks == (5,) and b["data/front"].chunks == (1, *SIZE, 3)
    for key in a["data"].array_keys():
        np.testing.assert_array_equal(b[f"data/{key}"][:], a[f"data/{key}"][8:], err_msg=key)


def _one_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_other_cameras_and_a_failed_video_are_one_line_and_leave_nothing(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store.open(store) as st:
        st.add_episode(make_episode("d-one-cam", 6, seed=4, cameras=("front",), image_size=SIZE))
        st.commit("mixed", ["a-ok", "d-one-cam"])
        odd_rate = make_episode("e-odd-rate", 6, seed=5, cameras=("front",), image_size=SIZE)
        odd_rate.meta = replace(odd_rate.meta, rate_hz=12.5)
        st.add_episode(odd_rate)
        st.commit("odd-rate", ["e-odd-rate"])
    out = tmp_path / "out"
    base = ["--format", "zarr", "--out", str(out), "--store", str(store)]
    assert main(["data", "export", "mixed", *base]) == 2
    err = _one_error(capsys)
    assert "different cameras or sizes" in err and "(a-ok)" in err and "front 31x23 (d-one-cam)" in err
    assert main(["data", "export", "odd-rate", *base, "--videos"]) == 2
    assert "recorded at 12.5 Hz; export without --videos" in _one_error(capsys)

    def broken(*args: object, **kw: object) -> None:
        raise VideoError("libsvtav1 failed at frame 3: Invalid argument")

    monkeypatch.setattr(zarr_replay, "encode_video", broken)
    assert main(["data", "export", "v1", *base, "--videos"]) == 2
    assert "libsvtav1 failed at frame 3" in _one_error(capsys)
    # Nothing that looks finished, and no temporary folder left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
