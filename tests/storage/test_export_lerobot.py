"""`takeover data export TAG --format lerobot`: read back with pyarrow and PyAV alone (not with the
exporter's code) and checked against the recorded episodes, every column and every `meta/` field
against the v3.0 layout, the files a large export is split into, and the one-line errors."""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from takeover.app.cli import main
from takeover.storage.exports import lerobot
from takeover.storage.exports.common import choose
from takeover.storage.schema import Episode
from takeover.storage.store import Store
from takeover.storage.testing import make_episode

GOLDEN = Path(__file__).with_name("golden") / "lerobot_layout.json"
SIZE = (48, 64)
FPS = 10  # make_episode records at 10 Hz

INFO_KEYS = {
    "codebase_version",
    "fps",
    "features",
    "total_episodes",
    "total_frames",
    "total_tasks",
    "chunks_size",
    "data_files_size_in_mb",
    "video_files_size_in_mb",
    "data_path",
    "video_path",
    "robot_type",
    "splits",
}
"""The fields of LeRobot 0.6's `DatasetInfo`: it drops any other with a warning."""
STATS = {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    common: dict[str, Any] = {"cameras": ("front", "wrist"), "image_size": SIZE}
    with Store.create(root) as st:
        st.add_episode(make_episode("a-ok", 14, seed=1, **common))
        st.add_episode(
            make_episode(
                "b-near", 9, seed=2, outcome="near_success", takeover_at=4, first_frame_step=2, **common
            )
        )
        st.add_episode(
            make_episode("c-fail", 10, seed=3, outcome="failure", success=False, takeover_at=0, **common)
        )
        st.commit("v1")
        st.commit("v1-trim", parent="v1", trim={"a-ok": (2, 12)})
    return root


def _rgb(jpeg: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _expected_picture(ep: Episode, camera: str, step: int) -> np.ndarray | None:
    """The latest frame captured at or before ``step``, decoded here; None before the first."""
    stream = ep.cameras[camera]
    earlier = [i for i, s in enumerate(np.asarray(stream.step_index)) if s <= step]
    if not earlier:
        return None
    latest = max(earlier, key=lambda i: (int(stream.step_index[i]), float(stream.timestamps[i])))
    return _rgb(stream.frames[latest])


def _decode_all(path: Path) -> tuple[list[np.ndarray], list[float], dict[str, Any]]:
    """Every frame of the first video stream with its presentation time (PyAV only)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        facts = {
            "codec": stream.codec_context.name,
            "pix_fmt": stream.pix_fmt,
            "rate": stream.average_rate,
            "size": (stream.height, stream.width),
        }
        frames, times = [], []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.pts * frame.time_base))
    return frames, times, facts


def _layout(root: Path) -> dict[str, Any]:
    """Files, parquet columns with their Arrow types, and info.json's features: the on-disk shape
    of an export, for the golden file."""
    out: dict[str, Any] = {"files": sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())}
    for path in sorted(root.rglob("*.parquet")):
        schema = pq.read_schema(path)
        out[str(path.relative_to(root))] = {f.name: str(f.type) for f in schema}
    info = json.loads((root / "meta" / "info.json").read_text())
    out["features"] = {
        k: {"dtype": v["dtype"], "shape": v["shape"], "info": sorted(v["info"]) if v.get("info") else None}
        for k, v in info["features"].items()
    }
    return out


@pytest.mark.parametrize("codec", ["av1", "h264"])
def test_lerobot_export_reads_back_with_pyarrow_and_pyav(
    codec: str, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["data", "export", "v1-trim", "--format", "lerobot", "--out", str(out), "--store", str(store)]
    assert main([*argv, "--codec", codec]) == 0
    captured = capsys.readouterr()
    assert "camera front has no frame yet for the first 2 step(s) of 1 episode (b-near)" in captured.err
    assert "as lerobot" in captured.out
    with Store.open(store) as st:
        version = st.resolve("v1-trim")
        episodes = {e: st.read_episode(e) for e in ("a-ok", "b-near", "c-fail")}
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["version"] == version.digest and provenance["format"] == "lerobot"
    ranges = {"a-ok": (2, 12), "b-near": (0, 9), "c-fail": (0, 10)}
    total = sum(b - a for a, b in ranges.values())

    # meta/info.json: LeRobot's fields only, with this dataset's values.
    info = json.loads((out / "meta" / "info.json").read_text())
    assert set(info) == INFO_KEYS
    assert info["codebase_version"] == "v3.0" and info["fps"] == FPS
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, total, 1)
    assert (info["chunks_size"], info["data_files_size_in_mb"], info["video_files_size_in_mb"]) == (
        1000,
        100,
        200,
    )
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    assert info["splits"] == {"train": "0:3"} and info["robot_type"] == episodes["a-ok"].meta.robot
    features = info["features"]
    assert features["observation.state"]["shape"] == [5] and features["action"]["shape"] == [3]
    assert features["proposed_action"] == {**features["action"]}
    for cam in ("front", "wrist"):
        ft = features[f"observation.images.{cam}"]
        assert ft["dtype"] == "video" and ft["shape"] == [*SIZE, 3]
        assert ft["names"] == ["height", "width", "channels"]
        assert ft["info"]["video.codec"] == codec and ft["info"]["video.fps"] == FPS
        assert (ft["info"]["video.height"], ft["info"]["video.width"]) == SIZE
        assert ft["info"]["video.pix_fmt"] == "yuv420p" and ft["info"]["has_audio"] is False
    for key, dtype in {
        "timestamp": "float32",
        "frame_index": "int64",
        "episode_index": "int64",
        "index": "int64",
        "task_index": "int64",
        "next.done": "bool",
        "next.success": "bool",
        "next.reward": "float32",
        "intervention": "bool",
        "control_source": "int64",
        "recorded_time": "float64",
        "image_valid.front": "bool",
    }.items():
        assert features[key] == {"dtype": dtype, "shape": [1], "names": None}, key

    # meta/tasks.parquet: the task text is the pandas index, as LeRobot reads it.
    tasks = pq.read_table(out / "meta" / "tasks.parquet")
    assert tasks.column("task").to_pylist() == ["pick the red cube"]
    assert tasks.column("task_index").to_pylist() == [0]
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]

    # meta/episodes: LeRobot's columns and ours.
    eps = pq.read_table(out / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert [e["episode_id"] for e in eps] == list(ranges)
    assert [e["label"] for e in eps] == ["success", "near_success", "failure"]
    assert [e["interventions"] for e in eps] == [0, 1, 1]
    assert [e["start_step"] for e in eps] == [2, 0, 0]
    frame_starts = np.cumsum([0, *(b - a for a, b in ranges.values())])
    for i, (e, (start, stop)) in enumerate(zip(eps, ranges.values(), strict=True)):
        n = stop - start
        assert e["episode_index"] == i and e["length"] == n and e["tasks"] == ["pick the red cube"]
        assert (e["dataset_from_index"], e["dataset_to_index"]) == (frame_starts[i], frame_starts[i + 1])
        assert (e["data/chunk_index"], e["data/file_index"]) == (0, 0)
        assert (e["meta/episodes/chunk_index"], e["meta/episodes/file_index"]) == (0, 0)
        for cam in ("front", "wrist"):
            key = f"videos/observation.images.{cam}"
            assert (e[f"{key}/chunk_index"], e[f"{key}/file_index"]) == (0, 0)
            assert e[f"{key}/from_timestamp"] == pytest.approx(frame_starts[i] / FPS)
            assert e[f"{key}/to_timestamp"] == pytest.approx(frame_starts[i + 1] / FPS)
        for ft in features:
            assert {k.rsplit("/", 1)[1] for k in e if k.startswith(f"stats/{ft}/")} == STATS, ft
        assert e["stats/observation.state/count"] == [n]
        np.testing.assert_allclose(
            e["stats/observation.state/mean"], episodes[e["episode_id"]].state[start:stop].mean(0), rtol=1e-5
        )

    # data/: one row per step; timestamps exactly 1/fps apart; the recorded values.
    data = pq.read_table(out / "data" / "chunk-000" / "file-000.parquet")
    assert data.num_rows == total
    state_type = data.schema.field("observation.state").type
    assert isinstance(state_type, pa.FixedSizeListType) and state_type.list_size == 5
    assert state_type.value_type == pa.float32()
    rows = data.to_pydict()
    np.testing.assert_array_equal(rows["index"], np.arange(total))
    for i, (eid, (start, stop)) in enumerate(ranges.items()):
        ep, n = episodes[eid], stop - start
        sl = slice(int(frame_starts[i]), int(frame_starts[i + 1]))
        assert rows["episode_index"][sl] == [i] * n and rows["frame_index"][sl] == list(range(n))
        ts = np.asarray(rows["timestamp"][sl], dtype=np.float64)
        assert np.abs(np.diff(ts) - 1 / FPS).max() < 1e-4 and ts[0] == 0
        np.testing.assert_array_equal(
            np.asarray(rows["observation.state"][sl], np.float32), ep.state[start:stop]
        )
        np.testing.assert_array_equal(np.asarray(rows["action"][sl], np.float32), ep.action[start:stop])
        np.testing.assert_array_equal(
            np.asarray(rows["proposed_action"][sl], np.float32), ep.proposed_action[start:stop]
        )
        assert rows["control_source"][sl] == ep.control_source[start:stop].tolist()
        assert rows["intervention"][sl] == (ep.control_source[start:stop] == 1).tolist()
        assert rows["next.done"][sl] == [False] * (n - 1) + [True]
        assert rows["next.success"][sl] == [False] * (n - 1) + [eid == "a-ok"]
        assert rows["next.reward"][sl] == [0.0] * (n - 1) + [1.0 if eid == "a-ok" else 0.0]
        recorded = np.asarray(rows["recorded_time"][sl]) + eps[i]["recorded_start"]
        np.testing.assert_allclose(recorded, ep.timestamps[start:stop], rtol=0, atol=1e-9)

    # videos/: one frame per step, at k / fps, the picture the step saw (within video tolerance).
    for cam in ("front", "wrist"):
        frames, times, facts = _decode_all(
            out / "videos" / f"observation.images.{cam}" / "chunk-000" / "file-000.mp4"
        )
        assert facts["codec"] in ({"av1", "libdav1d"} if codec == "av1" else {"h264"})
        assert facts["size"] == SIZE and facts["rate"] == Fraction(FPS)
        assert len(frames) == total
        np.testing.assert_allclose(times, np.arange(total) / FPS, atol=1e-6)
        valid = rows[f"image_valid.{cam}"]
        for i, (eid, (start, stop)) in enumerate(ranges.items()):
            for k, step in enumerate(range(start, stop)):
                j = int(frame_starts[i]) + k
                expected = _expected_picture(episodes[eid], cam, step)
                if expected is None:
                    assert not valid[j] and frames[j].max() <= 8, (eid, step)
                    continue
                assert valid[j]
                err = np.abs(frames[j].astype(np.int16) - expected.astype(np.int16)).mean()
                assert err < 6, (cam, eid, step, err)

    # meta/stats.json: LeRobot's statistics of every feature over the whole dataset.
    stats = json.loads((out / "meta" / "stats.json").read_text())
    assert set(stats) == set(features)
    for key, value in stats.items():
        assert set(value) == STATS, key
    all_states = np.concatenate([episodes[e].state[a:b] for e, (a, b) in ranges.items()])
    np.testing.assert_allclose(stats["observation.state"]["mean"], all_states.mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats["observation.state"]["min"], all_states.min(0), rtol=1e-6)
    assert stats["observation.state"]["count"] == [total]
    assert np.asarray(stats["observation.images.front"]["mean"]).shape == (3, 1, 1)
    assert (
        0
        <= np.min(stats["observation.images.front"]["min"])
        <= np.max(stats["observation.images.front"]["max"])
        <= 1
    )

    if codec == "av1":
        layout = _layout(out)
        if os.environ.get("TAKEOVER_WRITE_GOLDEN"):
            GOLDEN.write_text(json.dumps(layout, indent=1, sort_keys=True) + "\n")
        assert layout == json.loads(GOLDEN.read_text())


def test_a_large_export_is_split_into_files_and_chunks(store: Path, tmp_path: Path) -> None:
    """Tiny size settings: a new data file after every episode, a new chunk every two files, and
    more than one video file (a video file is measured by what the encoder has given out, which
    lags the frames by its lookahead); each episode row says where its steps and frames are,
    timed from the start of its file."""
    layout = lerobot.Layout(chunks_size=2, data_files_size_in_mb=1e-6, video_files_size_in_mb=1e-6)
    out = tmp_path / "split"
    out.mkdir()
    with Store.open(store) as st:
        chosen = choose(st, "v1")
        steps = lerobot.write(st, chosen, out, layout=layout, say=lambda line: None)
        episodes = [st.read_episode(e.episode_id) for e in chosen.entries]
    assert steps == 14 + 9 + 10
    eps = pq.read_table(out / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert [(e["data/chunk_index"], e["data/file_index"]) for e in eps] == [(0, 0), (0, 1), (1, 0)]
    for e, ep in zip(eps, episodes, strict=True):
        chunk, file = e["data/chunk_index"], e["data/file_index"]
        table = pq.read_table(out / "data" / f"chunk-{chunk:03d}" / f"file-{file:03d}.parquet").to_pydict()
        assert table["index"] == list(range(e["dataset_from_index"], e["dataset_to_index"]))
        np.testing.assert_array_equal(np.asarray(table["action"], np.float32), ep.action)
    key = "videos/observation.images.wrist"
    files = sorted({(e[f"{key}/chunk_index"], e[f"{key}/file_index"]) for e in eps})
    assert len(files) > 1
    for chunk, file in files:
        held = [
            (e, ep)
            for e, ep in zip(eps, episodes, strict=True)
            if (e[f"{key}/chunk_index"], e[f"{key}/file_index"]) == (chunk, file)
        ]
        frames, _, _ = _decode_all(
            out / "videos" / "observation.images.wrist" / f"chunk-{chunk:03d}" / f"file-{file:03d}.mp4"
        )
        assert len(frames) == sum(e["length"] for e, _ in held)
        assert held[0][0][f"{key}/from_timestamp"] == 0
        for e, ep in held:
            assert e[f"{key}/to_timestamp"] - e[f"{key}/from_timestamp"] == pytest.approx(e["length"] / FPS)
            last = _expected_picture(ep, "wrist", e["length"] - 1)
            assert last is not None
            j = round(e[f"{key}/to_timestamp"] * FPS) - 1
            assert np.abs(frames[j].astype(np.int16) - last.astype(np.int16)).mean() < 6


def test_odd_frame_sizes_are_padded_and_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "store"
    with Store.create(root) as st:
        st.add_episode(make_episode("odd", 6, seed=4, cameras=("front",), image_size=(25, 33), frame_every=1))
        st.commit("v1")
    out = tmp_path / "out"
    assert main(["data", "export", "v1", "--format", "lerobot", "--out", str(out), "--store", str(root)]) == 0
    assert "camera front is 33x25: stored as 34x26 video" in capsys.readouterr().err
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["features"]["observation.images.front"]["shape"] == [26, 34, 3]
    frames, _, _ = _decode_all(out / "videos" / "observation.images.front" / "chunk-000" / "file-000.mp4")
    assert frames[0].shape == (26, 34, 3) and len(frames) == 6


def _one_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_what_lerobot_cannot_hold_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "store"
    with Store.create(root) as st:
        st.add_episode(make_episode("two-cams", 6, seed=1, cameras=("front", "wrist")))
        st.add_episode(make_episode("one-cam", 6, seed=2, cameras=("front",)))
        st.add_episode(make_episode("big", 6, seed=3, cameras=("front",), image_size=(16, 32)))
        odd_rate = make_episode("odd-rate", 6, seed=4, cameras=("front",))
        odd_rate.meta = replace(odd_rate.meta, rate_hz=12.5)
        st.add_episode(odd_rate)
        st.commit("cams")
    base = ["--format", "lerobot", "--store", str(root)]
    out = tmp_path / "out"
    assert (
        main(["data", "export", "cams", "--out", str(out), *base, "--episodes", "two-cams", "one-cam"]) == 2
    )
    assert "front 16x8 (one-cam); front 16x8, wrist 16x8 (two-cams)" in _one_error(capsys)
    assert main(["data", "export", "cams", "--out", str(out), *base, "--episodes", "one-cam", "big"]) == 2
    assert "front 32x16 (big); front 16x8 (one-cam)" in _one_error(capsys)
    assert main(["data", "export", "cams", "--out", str(out), *base, "--codec", "h264", "--crf", "99"]) == 2
    assert "crf for h264 is 0..51" in _one_error(capsys)
    assert main(["data", "export", "cams", "--out", str(out), *base, "--gop", "0"]) == 2
    assert "gop" in _one_error(capsys)
    assert main(["data", "export", "cams", "--out", str(out), *base, "--episodes", "odd-rate"]) == 2
    assert "whole number of frames per second" in _one_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


REFERENCE = Path(__file__).with_name("golden") / "lerobot_v30_reference.json"


def _sized(arrow_type: str) -> str:
    """An Arrow type with vector lengths left out (the reference's dimensions are not ours)."""
    return re.sub(r"\[\d+\]", "[n]", arrow_type)


def test_the_layout_matches_what_lerobot_itself_writes(store: Path, tmp_path: Path) -> None:
    """Against a dataset LeRobot 0.6.1's own writer made (same cameras, the same per-step columns
    of ours): every column it writes we write with the same Arrow type, info.json has its fields,
    each video feature's info its stream keys, the statistics its names and shapes, and
    tasks.parquet its pandas index."""
    ref = json.loads(REFERENCE.read_text())
    out = tmp_path / "out"
    assert (
        main(["data", "export", "v1", "--format", "lerobot", "--out", str(out), "--store", str(store)]) == 0
    )
    ours_info = json.loads((out / "meta" / "info.json").read_text())
    assert set(ours_info) == set(ref["info"])
    for key, ft in ref["info"]["features"].items():
        assert ours_info["features"][key]["dtype"] == ft["dtype"], key
        assert len(ours_info["features"][key]["shape"]) == len(ft["shape"]), key
        if ft["dtype"] == "video":
            stream_keys = {k for k in ft["info"] if not k.startswith("video.") or k in _STREAM_KEYS}
            assert stream_keys <= set(ours_info["features"][key]["info"]), key
            assert set(ours_info["features"][key]["info"]) <= set(ft["info"]), key
    for rel, schema in ref["parquet_schemas"].items():
        ours = {f.name: _sized(str(f.type)) for f in pq.read_schema(out / rel)}
        for column, arrow_type in schema["columns"].items():
            if column.startswith("stats/") and column.split("/")[1] not in ours_info["features"]:
                continue
            assert ours.get(column) == _sized(arrow_type), (rel, column)
    assert json.loads(pq.read_schema(out / "meta" / "tasks.parquet").metadata[b"pandas"])[
        "index_columns"
    ] == ["task"]
    stats = json.loads((out / "meta" / "stats.json").read_text())
    for key, shapes in ref["stats_shapes"].items():
        assert set(stats[key]) == set(shapes), key
        for stat, shape in shapes.items():
            ours_shape = list(np.asarray(stats[key][stat]).shape)
            assert len(ours_shape) == len(shape) and (len(shape) != 3 or ours_shape == shape), (key, stat)
    assert set(ref["files"]) <= {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}


_STREAM_KEYS = {
    "video.height",
    "video.width",
    "video.codec",
    "video.pix_fmt",
    "video.fps",
    "video.channels",
}
