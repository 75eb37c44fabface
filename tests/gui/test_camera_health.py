"""A free-running camera unplugged mid-attempt, seen in the real console window.

Everything between the fake device and the window is the real code: the camera reads a fake
``cv2.VideoCapture`` (the lowest seam), its capture thread reconnects it, the recorder keeps its
health and counts, the engine's status board publishes them (over the real wire, through the
fake engine's PUB socket), and the window shows the camera down next to its NO SIGNAL preview.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from takeover.app.engine.protocol import Status
from takeover.app.engine.status import StatusBoard
from takeover.app.net import wire
from takeover.recorder.cameras import OpenCVCamera, OpenCVCameraConfig
from takeover.recorder.capture import Backoff, CameraCapture, LatestFrames
from takeover.recorder.recorder import EpisodeRecorder
from takeover.recorder.testing import FakeVideoDevice, end_record, start_record, step_record
from takeover.storage.schema import EventKind
from takeover.storage.store import Store

from .conftest import sample_frame

pytestmark = pytest.mark.gui


def test_an_unplugged_camera_is_shown_down_beside_its_preview_and_counted(
    qtbot: Any, engine: Any, console: Any, screenshot: Any, tmp_path: Path
) -> None:
    device = FakeVideoDevice(width=320, height=240, fps=30.0)
    camera = OpenCVCamera(OpenCVCameraConfig("wrist", 0), open_capture=device.open)
    latest = LatestFrames()
    board = StatusBoard()
    board.previews = latest.previews
    scene = {"front": sample_frame()}
    with Store.create(tmp_path / "store") as store:
        rec = EpisodeRecorder(store)
        board.watch_recorder(rec)

        def sink(name: str, image: np.ndarray, t: float) -> None:
            latest(name, image, t)
            rec.on_frame(name, image, t)

        camera.connect()
        capture = CameraCapture(camera, sink, rec.on_camera_health, Backoff(0.05, 0.2))
        capture.start()
        start = start_record("gui-unplug", rate_hz=50.0)
        rec.on_episode_start(start)
        board.on_episode_start(start)
        steps = [0]

        def run_until(condition: Any, timeout_s: float = 5.0) -> None:
            """Run the attempt (a step each 20 ms, each status published) until ``condition()``."""
            deadline = time.monotonic() + timeout_s
            while not condition():
                assert time.monotonic() < deadline, "the window did not show it in time"
                step = step_record(steps[0], time.monotonic(), scene)
                rec.on_step(step)
                board.on_step(step)
                engine.status = board.publishable()
                steps[0] += 1
                qtbot.wait(20)

        try:
            run_until(lambda: "wrist" in console.previews and not console.previews["wrist"].stale)
            caption = console.preview_captions["wrist"]
            assert caption.text() == "camera: wrist" and not caption.down
            device.unplug()
            run_until(lambda: caption.down and console.previews["wrist"].stale)
            run_until(lambda: "missed wrist" in console.timing_value.text() and "attempt" in caption.text())
            assert caption.text().startswith("camera: wrist — DOWN ") and "reconnecting" in caption.text()
            # The whole text, with why the latest reconnect failed, is the caption's tooltip.
            assert re.fullmatch(
                r"DOWN \d+\.\d s, reconnecting \(attempt \d+\): cannot open 0", caption.toolTip()
            )
            assert console.previews["wrist"].text() == "NO SIGNAL"
            red = caption.grab().toImage().pixelColor(2, caption.height() // 2)
            assert red.red() > 150 and red.green() < 90 and red.blue() < 90
            shot = screenshot(
                console, Path(os.environ.get("TAKEOVER_CAMERA_DOWN_SHOT", tmp_path / "camera-down.png"))
            )
            assert shot.stat().st_size > 10_000
            device.plug()
            run_until(lambda: not caption.down and not console.previews["wrist"].stale)
            assert caption.text() == "camera: wrist" and caption.toolTip() == ""
            missed = rec.missed_frames()["wrist"]
            run_until(lambda: f"missed wrist {missed}" in console.timing_value.text())
            rec.on_episode_end(end_record())
        finally:
            capture.stop()
            camera.close()
        ep = store.read_episode("gui-unplug")
    kinds = [e.kind for e in ep.events if e.kind in (EventKind.CAMERA_DOWN, EventKind.CAMERA_UP)]
    assert kinds == [EventKind.CAMERA_DOWN, EventKind.CAMERA_UP]
    assert ep.meta.extra["missed_frames"] == {"wrist": missed} and missed > 0


def test_status_carries_camera_health_and_refuses_malformed_health() -> None:
    health = {"wrist": "DOWN 1.2 s, reconnecting (attempt 2): cannot open 0", "top": "ok"}
    status = Status(0.0, "IDLE", False, "", 0, 0, False, camera_health=health)
    assert Status.decode(status.encode()).camera_health == health
    assert Status.decode(Status(0.0, "IDLE", False, "", 0, 0, False).encode()).camera_health == {}
    body = wire.decode(status.encode())
    body["camera_health"] = {"wrist": 3}
    with pytest.raises(wire.WireError, match="camera_health"):
        Status.decode(wire.encode(body))
