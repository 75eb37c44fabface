"""JPEG encoding in a child process: frames arrive, a dead encoder is reported, nothing is lost."""

from __future__ import annotations

import os
import signal
import time

import cv2
import numpy as np

from takeover.recorder.cameras import SyntheticCamera, SyntheticCameraConfig
from takeover.recorder.recorder import EpisodeRecorder, RecorderConfig
from takeover.recorder.testing import end_record, start_record, step_record
from takeover.storage.store import Store


def _frames(n: int, seed: int) -> list[np.ndarray]:
    cam = SyntheticCamera(SyntheticCameraConfig(width=96, height=72, paced=False, seed=seed))
    cam.connect()
    return [cam.frame(i) for i in range(n)]


def test_frames_from_steps_and_free_running_cameras_arrive_encoded_in_order(store: Store) -> None:
    rec = EpisodeRecorder(store, RecorderConfig(encoder="process", queue_frames=256))
    try:
        front, wrist = _frames(40, 1), _frames(40, 2)
        rec.on_episode_start(start_record("enc-1", rate_hz=50.0))
        pid = rec.encoder_pid
        assert pid is not None and pid != os.getpid()
        t0 = time.monotonic()
        accepted = 0
        for i in range(40):
            rec.on_step(step_record(i, t0 + 0.02 * i, {"front": front[i]}))
            accepted += rec.on_frame("wrist", wrist[i], t0 + 0.02 * i + 0.004)
        rec.on_episode_end(end_record())
        assert accepted == 40
        ep = store.read_episode("enc-1")
        assert len(ep.cameras["front"].frames) == 40 and len(ep.cameras["wrist"].frames) == 40
        assert ep.meta.extra["dropped_frames"] == {"front": 0, "wrist": 0}
        np.testing.assert_array_equal(ep.cameras["front"].step_index, np.arange(40))
        for i in (0, 17, 39):  # each stored JPEG is the frame given, at q90
            decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(ep.cameras["front"].frames[i], np.uint8), 1), 4)
            assert np.abs(decoded.astype(np.int16) - front[i]).mean() < 4.0
        # The same process serves the next attempt.
        rec.on_episode_start(start_record("enc-2"))
        assert rec.encoder_pid == pid
        rec.on_step(step_record(0, time.monotonic(), {"front": front[0]}))
        rec.on_episode_end(end_record())
        assert len(store.read_episode("enc-2").cameras["front"].frames) == 1
    finally:
        rec.close()
    assert rec.encoder_pid is None


def test_a_dead_encoder_is_reported_holds_the_attempt_and_every_frame_is_accounted_for(store: Store) -> None:
    rec = EpisodeRecorder(store, RecorderConfig(encoder="process", queue_frames=64))
    try:
        frames = _frames(10, 3)
        rec.on_episode_start(start_record("crash"))
        pid = rec.encoder_pid
        assert pid is not None
        accepted, t0 = 0, time.monotonic()
        for i in range(10):
            rec.on_step(step_record(i, t0 + 0.01 * i))
            accepted += rec.on_frame("wrist", frames[i], t0 + 0.01 * i)
        assert rec.halt_reason() == ""
        time.sleep(0.3)  # the first frames are encoded (a camera with none stored has no stream)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while not rec.halt_reason() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "camera frames cannot be recorded" in rec.halt_reason()
        assert "encoder process ended" in rec.halt_reason()
        for i in range(10, 15):  # refused now: counted dropped, never silently lost
            rec.on_step(step_record(i, t0 + 0.01 * i))
            accepted += rec.on_frame("wrist", frames[i % 10], t0 + 0.01 * i)
        rec.on_episode_end(end_record())
        ep = store.read_episode("crash")
        wrist = ep.cameras.get("wrist")
        stored = len(wrist.frames) if wrist is not None else 0
        assert stored + ep.meta.extra["dropped_frames"]["wrist"] == accepted == 15
        assert ep.meta.extra["dropped_frames"]["wrist"] >= 5 and stored >= 1
        # The next attempt gets a new encoder.
        rec.on_episode_start(start_record("after"))
        assert rec.encoder_pid not in (None, pid) and rec.halt_reason() == ""
        rec.on_step(step_record(0, time.monotonic(), {"front": frames[0]}))
        rec.on_episode_end(end_record())
        assert len(store.read_episode("after").cameras["front"].frames) == 1
    finally:
        rec.close()
