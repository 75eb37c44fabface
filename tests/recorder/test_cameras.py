from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from takeover.recorder.cameras import (
    OpenCVCamera,
    OpenCVCameraConfig,
    SyntheticCamera,
    SyntheticCameraConfig,
)
from takeover.recorder.capture import CameraCapture
from takeover.recorder.recorder import EpisodeRecorder
from takeover.recorder.testing import end_record, start_record, step_record
from takeover.storage.store import Store


def test_synthetic_camera_is_deterministic_moving_and_paced() -> None:
    cfg = SyntheticCameraConfig(name="a", width=64, height=48, fps=50.0, seed=1)
    cam = SyntheticCamera(cfg)
    with pytest.raises(RuntimeError):
        cam.frame(0)  # no I/O or set-up before connect
    with cam, SyntheticCamera(cfg) as twin:
        frames = [cam.read() for _ in range(6)]
        assert all(f is not None for f in frames)
        assert np.array_equal(frames[2].image, twin.frame(2))  # type: ignore[union-attr]
        assert not np.array_equal(frames[0].image, frames[1].image)  # type: ignore[union-attr]
        times = np.array([f.t for f in frames])  # type: ignore[union-attr]
        assert frames[0].image.shape == (48, 64, 3) and frames[0].image.dtype == np.uint8  # type: ignore[union-attr]
        assert np.all(np.diff(times) > 0.01)  # paced at 50 fps, stamped at capture
    assert cam.read() is None


def _video(path: Path, n: int) -> list[np.ndarray]:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    assert writer.isOpened()
    frames = []
    for i in range(n):
        rgb = np.zeros((48, 64, 3), dtype=np.uint8)
        rgb[:, :, 0] = 20 * i  # red ramps up: checks the channel order too
        frames.append(rgb)
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return frames


def test_opencv_camera_reads_a_video_source_in_rgb(tmp_path: Path) -> None:
    _video(tmp_path / "v.avi", 5)
    with pytest.raises(ConnectionError, match="cannot open"):
        OpenCVCamera(OpenCVCameraConfig("x", str(tmp_path / "missing.avi"))).connect()
    with OpenCVCamera(OpenCVCameraConfig("side", str(tmp_path / "v.avi"))) as cam:
        got = []
        while (f := cam.read()) is not None:
            got.append(f)
    assert len(got) == 5 and [f.index for f in got] == list(range(5))
    assert abs(int(got[3].image[..., 0].mean()) - 60) <= 3 and got[3].image[..., 2].mean() < 5


def test_several_cameras_record_at_once_through_capture_threads(store: Store, tmp_path: Path) -> None:
    _video(tmp_path / "v.avi", 8)
    rec = EpisodeRecorder(store)
    rec.on_episode_start(start_record("multi"))
    cams = [
        SyntheticCamera(SyntheticCameraConfig(name="left", width=64, height=48, fps=60.0)),
        SyntheticCamera(SyntheticCameraConfig(name="right", width=64, height=48, fps=60.0, seed=2)),
        OpenCVCamera(OpenCVCameraConfig("file", str(tmp_path / "v.avi"))),
    ]
    captures = []
    for cam in cams:
        cam.connect()
        captures.append(CameraCapture(cam, rec.on_frame, rec.on_camera_health))
    for c in captures:
        c.start()
    t_end = time.monotonic() + 0.3
    i = 0
    while time.monotonic() < t_end:
        rec.on_step(step_record(i, time.monotonic()))
        i += 1
        time.sleep(0.005)
    for c in captures:
        c.stop()
    rec.on_episode_end(end_record())
    for cam in cams:
        cam.close()
    assert captures[2].ended.is_set() and threading.active_count() >= 1
    # A video file that ended is down for good (not reconnected), and says so.
    health = rec.camera_health()
    assert health["left"] == health["right"] == "ok"
    assert re.fullmatch(r"DOWN \d+\.\d s: the source has no more frames", health["file"])
    ep = store.read_episode("multi")
    assert set(ep.cameras) == {"left", "right", "file"}
    assert len(ep.cameras["file"].frames) == 8 and len(ep.cameras["left"].frames) >= 10
    for cam in ep.cameras.values():
        assert np.all(np.diff(cam.timestamps) > 0) and cam.dropped == 0
        assert np.all((cam.step_index >= 0) & (cam.step_index < ep.num_steps))


def test_latest_frames_gives_small_fresh_copies_only() -> None:
    from takeover.recorder.capture import LatestFrames

    now = [100.0]
    frames = LatestFrames(clock=lambda: now[0])
    big = np.arange(480 * 640 * 3, dtype=np.uint32).astype(np.uint8).reshape(480, 640, 3)
    frames("wrist", big, 99.9)
    frames("top", big[:120, :160], 98.0)  # older than a second: not shown as live
    previews = frames.previews(max_height=180)
    assert list(previews) == ["wrist"]
    small = previews["wrist"]
    assert small.shape == (160, 214, 3) and small.flags.c_contiguous  # stride 3: 480 -> 160 rows
    np.testing.assert_array_equal(small, big[::3, ::3])
    frames("top", big[:120, :160], 100.0)
    assert frames.previews()["top"].shape == (120, 160, 3)  # already small: unchanged
