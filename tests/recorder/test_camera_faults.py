"""Free-running cameras that die: a camera unplugged mid-attempt (reads of its capture object fail,
then succeed again after it is plugged back) reconnects, is recorded as camera events, is shown in
the engine's status and counted in the frame counts; frames racing the end of an attempt are all
accounted for."""

from __future__ import annotations

import threading
import time

import numpy as np

from takeover.app.engine.status import StatusBoard
from takeover.recorder.camera_health import CameraBook
from takeover.recorder.cameras import CameraSpec, OpenCVCamera, OpenCVCameraConfig
from takeover.recorder.capture import Backoff, CameraCapture, CameraHealth
from takeover.recorder.recorder import EpisodeRecorder, RecorderConfig
from takeover.recorder.testing import FakeVideoDevice, end_record, start_record, step_record
from takeover.storage.coverage import valid_steps
from takeover.storage.schema import EventKind, event_camera
from takeover.storage.store import Store

FPS = 50.0
RATE = 100.0


def test_unplugged_camera_reconnects_is_recorded_shown_and_counted(store: Store) -> None:
    device = FakeVideoDevice(fps=FPS)
    camera = OpenCVCamera(OpenCVCameraConfig("wrist", 0), open_capture=device.open)
    rec = EpisodeRecorder(store)
    board = StatusBoard()
    board.watch_recorder(rec)
    reports: list[CameraHealth] = []

    def on_health(h: CameraHealth) -> None:
        reports.append(h)
        rec.on_camera_health(h)

    camera.connect()
    capture = CameraCapture(camera, rec.on_frame, on_health, Backoff(0.05, 0.2))
    capture.start()
    start = start_record("unplugged", rate_hz=RATE)
    rec.on_episode_start(start)
    board.on_episode_start(start)
    shown_down: list[str] = []
    t0 = time.monotonic()
    unplugged_at = plugged_at = 0.0
    i = 0
    try:
        while (now := time.monotonic()) < t0 + 1.3:
            if not unplugged_at and now > t0 + 0.3:
                device.unplug()
                unplugged_at = now
            if not plugged_at and now > t0 + 0.75:
                device.plug()
                plugged_at = now
            step = step_record(i, now)
            rec.on_step(step)
            board.on_step(step)
            health = board.publishable().camera_health["wrist"]
            if health != "ok":
                shown_down.append(health)
            i += 1
            time.sleep(max(0.0, t0 + i / RATE - time.monotonic()))
        rec.on_episode_end(end_record())
        assert not capture.ended.is_set()  # the capture outlived the outage
    finally:
        capture.stop()
        camera.close()
    timing = board.snapshot().timing

    # Reconnected with backoff, each failed attempt reported; up again once plugged back.
    assert capture.reconnects == 1 and device.opens >= 3
    states = [(h.up, h.attempts) for h in reports]
    assert states[0] == (True, 0) and states[1] == (False, 0) and states[-1] == (True, 0)
    assert [a for up, a in states[2:-1]] == list(range(1, len(states) - 2)) and not any(
        up for up, _ in states[1:-1]
    )
    down, up = reports[1], reports[-1]
    assert unplugged_at - 2 / FPS <= down.since <= unplugged_at + 1 / FPS and up.since > plugged_at
    # The status showed it down (reconnect attempts counted), then ok again.
    assert shown_down and shown_down[0].startswith("DOWN") and "reconnecting" in shown_down[0]
    assert any("(attempt " in text for text in shown_down)
    assert board.publishable().camera_health == {"wrist": "ok"}

    ep = store.read_episode("unplugged")
    cam = ep.cameras["wrist"]
    camera_events = [e for e in ep.events if e.kind in (EventKind.CAMERA_DOWN, EventKind.CAMERA_UP)]
    assert [e.kind for e in camera_events] == [EventKind.CAMERA_DOWN, EventKind.CAMERA_UP]
    assert all(event_camera(e) == "wrist" for e in camera_events)
    d, u = camera_events[0].step, camera_events[1].step
    assert 0 < d < u < ep.num_steps
    assert camera_events[0].t == down.since and camera_events[1].t == up.since
    # Steps are placed so that pairing agrees: no frame while down, the new frame at the up step.
    assert not np.any((cam.step_index >= d) & (cam.step_index < u)) and u in cam.step_index
    assert ep.timestamps[d] > down.since >= ep.timestamps[d - 1]
    valid = valid_steps(ep.num_steps, ep.events, "wrist", cam.step_index)
    assert not valid[d:u].any() and valid[u:].all()

    # Missed frames: the frames due at the camera's rate while it was down.
    missed = ep.meta.extra["missed_frames"]["wrist"]
    assert missed == round((up.since - down.since) * FPS)
    assert missed >= round((plugged_at - unplugged_at) * FPS) - 2
    assert timing["missed wrist"] == missed and timing["dropped wrist"] == 0
    assert cam.dropped == 0 and rec.missed_frames() == {"wrist": missed}
    expected = (cam.timestamps[-1] - cam.timestamps[0]) * FPS + 1
    assert abs(len(cam.frames) + missed - expected) <= 3 + 0.05 * expected
    assert camera_events[0].reason == "wrist: no frame from 0"
    assert "back after" in camera_events[1].reason and f"{missed} frames missed" in camera_events[1].reason


def test_frames_racing_the_end_of_an_attempt_are_all_accounted_for(store: Store) -> None:
    rec = EpisodeRecorder(store, RecorderConfig(queue_frames=4, encode_workers=1))
    image = np.zeros((48, 64, 3), dtype=np.uint8)

    def feed(k: int, accepted: list[int], stop: threading.Event) -> None:
        while not stop.is_set():
            accepted[k] += rec.on_frame(f"cam{k}", image, time.monotonic())

    for attempt in range(3):
        accepted = [0, 0]
        stop = threading.Event()
        episode_id = f"race-{attempt}"
        rec.on_episode_start(start_record(episode_id))
        feeders = [threading.Thread(target=feed, args=(k, accepted, stop)) for k in range(2)]
        for f in feeders:
            f.start()
        for i in range(20):
            rec.on_step(step_record(i, time.monotonic()))
            time.sleep(0.002)
        rec.on_episode_end(end_record())  # the feeders keep going through the end
        stop.set()
        for f in feeders:
            f.join()
        ep = store.read_episode(episode_id)
        for k in range(2):
            cam = ep.cameras[f"cam{k}"]
            assert accepted[k] > 0 and len(cam.frames) + cam.dropped == accepted[k], (attempt, k)


def test_camera_book_counts_missed_frames_inside_the_attempt_only() -> None:
    now = [100.0]
    book = CameraBook(clock=lambda: now[0])
    spec = CameraSpec("top", 64, 48, 10.0)
    assert book.report(CameraHealth(spec, True, 99.0)) is None  # the capture starts: no event
    book.report(CameraHealth(spec, False, 99.5, "unplugged"))  # down before the attempt
    now[0] = 101.0
    events = book.begin()
    assert [(e.kind, e.step, event_camera(e)) for e in events] == [(EventKind.CAMERA_DOWN, 0, "top")]
    assert "down since before the attempt: unplugged" in events[0].reason
    now[0] = 102.0
    assert book.missed_frames() == {"top": 10}  # counted from the start of the attempt
    assert book.summary()["top"].startswith("DOWN 2.5 s, reconnecting: unplugged")
    assert book.report(CameraHealth(spec, False, 99.5, "cannot open", attempts=3)) is None
    assert book.summary()["top"] == "DOWN 2.5 s, reconnecting (attempt 3): cannot open"
    back = book.report(CameraHealth(spec, True, 102.5))
    assert back is not None and back.kind is EventKind.CAMERA_UP and back.step == -1
    assert back.reason == "top: back after 3.00 s, 15 frames missed"
    now[0] = 103.0
    book.report(CameraHealth(spec, False, 103.0, "no frame"))
    now[0] = 103.4
    assert book.end() == {"top": 19}  # 15, and 4 of an outage still on at the end
    now[0] = 110.0
    assert book.missed_frames() == {"top": 19}  # between attempts the last attempt's count stays
