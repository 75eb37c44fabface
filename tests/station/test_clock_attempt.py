"""One clock per episode: attempts against a station whose clock is seconds off and drifts.

The station server, its bridge and the fake robot run in a thread of this process on a clock
``(1 + drift) * t + skew`` (drift exaggerated to 500 ppm, so a few seconds show it), and the
engine reaches them over real sockets through ``RemoteStation``. Because the skewed clock is an
exact function of this process's monotonic clock, the test knows the engine time of every station
time, independently of the estimate under test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from takeover.app.control.loop import ControlLoop, LoopConfig
from takeover.app.station.fake_robot import FakeRobot
from takeover.app.station.remote import RemoteStation
from takeover.recorder.cameras import SyntheticCamera, SyntheticCameraConfig
from takeover.recorder.capture import CameraCapture
from takeover.recorder.recorder import EpisodeRecorder
from takeover.recorder.recovery import recover_all
from takeover.storage.schema import Episode, EventKind
from takeover.storage.store import Store

from .conftest import SkewedClock, serving

DRIFT = 500e-6


def check_station_times(ep: Episode, clock: SkewedClock, killed_at: float | None = None) -> np.ndarray:
    """Every step's time is the engine's time of its observation within the recorded uncertainty,
    the raw station times map back through the recorded offset, and the station camera's frames
    carry their engine capture times. Returns the engine's own time of each step.

    ``killed_at``: the engine was killed then; the frames of the last steps may not have been
    durable yet (they are encoded apart from the steps), so the frames kept are those of the
    first steps, and only steps of the last second before the kill may lack theirs."""
    raw = ep.streams["station_clock.time"]
    offset = ep.streams["station_clock.offset"]
    bound = ep.streams["station_clock.uncertainty"].values
    np.testing.assert_array_equal(raw.timestamps, ep.timestamps)
    true_t = clock.engine_time(raw.values)
    err = np.abs(ep.timestamps - true_t)
    assert np.all(err <= bound + 1e-9), f"worst step time error {err.max():.6f} s, bound {bound.max():.6f} s"
    assert bound.max() < 5e-3  # loopback: the uncertainty is that of a fraction of a millisecond
    np.testing.assert_allclose(ep.timestamps + offset.values, raw.values, rtol=0, atol=1e-9)
    np.testing.assert_allclose(offset.values, clock.offset_at(true_t), rtol=0, atol=bound.max() + 1e-9)

    cam = ep.cameras["fake"]  # the station's own camera: one image per step, stamped by the robot
    images = ep.streams["station_clock.image_time.fake"]
    kept = len(cam.timestamps)
    assert cam.dropped == 0 and kept <= ep.num_steps
    if kept < ep.num_steps:
        assert killed_at is not None, f"{ep.num_steps - kept} steps lack their frame"
        assert ep.timestamps[kept] >= killed_at - 1.0, "a frame was lost more than a second before the kill"
    np.testing.assert_array_equal(cam.step_index, np.arange(kept))
    assert kept <= len(images.timestamps) <= ep.num_steps
    np.testing.assert_array_equal(images.timestamps[:kept], cam.timestamps)
    image_err = np.abs(cam.timestamps - clock.engine_time(images.values[:kept]))
    assert np.all(image_err <= bound[cam.step_index] + 1e-9)
    return true_t


def check_free_frames(ep: Episode, true_t: np.ndarray, camera: str) -> int:
    """Every frame of the engine's free-running camera is at the last step whose engine time is at
    or before its capture (a frame within the uncertainty of a step's time may go either way).
    Returns how many frames were checked."""
    bound = ep.streams["station_clock.uncertainty"].values
    cam = ep.cameras[camera]
    expected = np.maximum(np.searchsorted(true_t, cam.timestamps, side="right") - 1, 0)
    wrong = np.flatnonzero(cam.step_index != expected)
    for i in wrong:
        step = int(expected[i])
        near = min(
            abs(cam.timestamps[i] - true_t[step]),
            abs(cam.timestamps[i] - true_t[min(step + 1, len(true_t) - 1)]),
        )
        assert near <= bound.max(), (
            f"frame {i} at {cam.timestamps[i]:.4f} is at step {cam.step_index[i]}, expected {step} "
            f"(step times {true_t[max(step - 1, 0)]:.4f} {true_t[step]:.4f})"
        )
    return len(cam.timestamps)


@pytest.mark.slow
@pytest.mark.parametrize("skew_s", [6.0, -4.5])
def test_frames_land_on_their_steps_with_a_skewed_drifting_station(tmp_path: Path, skew_s: float) -> None:
    clock = SkewedClock(skew_s, DRIFT)
    camera = SyntheticCamera(SyntheticCameraConfig(name="engine", width=64, height=48, fps=60.0))
    for server in serving(FakeRobot(clock=clock), clock):
        with Store.open_or_create(tmp_path / "store") as store, RemoteStation(server.endpoint) as remote:
            at_connect = remote.clock_estimate()
            assert at_connect is not None and at_connect.samples >= remote.clock_burst
            assert abs(at_connect.offset_s - clock.offset_at(at_connect.at)) <= at_connect.uncertainty_s
            recorder = EpisodeRecorder(store)
            capture = CameraCapture(camera, recorder.on_frame)
            camera.connect()
            capture.start()
            try:
                config = LoopConfig(rate_hz=50.0, max_steps=160, end_on_success=False)
                result = ControlLoop(remote, None, [], [recorder], config).run_episode()
            finally:
                capture.stop()
                camera.close()
            ep = store.read_episode(result.episode_id)

    assert ep.num_steps == 160
    true_t = check_station_times(ep, clock)
    assert check_free_frames(ep, true_t, "engine") > 100
    start = next(e for e in ep.events if e.kind is EventKind.START)
    assert start.t == ep.timestamps[0]

    final = ep.meta.extra["station_clock"]
    assert set(final) == {"offset_s", "drift", "drift_error", "uncertainty_s", "at", "samples", "best_rtt_s"}
    assert abs(final["offset_s"] - clock.offset_at(final["at"])) <= final["uncertainty_s"]
    assert final["samples"] >= 160 and 0 < final["best_rtt_s"] < 0.05
    # The fit is within the error it states for itself (3 sigma of the slope plus a floor); on a
    # quiet loopback that is well under 200 ppm, under load it says it is less sure.
    assert abs(final["drift"] - DRIFT) <= max(final["drift_error"], 200e-6), final
    first = ep.meta.extra["station_clock_start"]
    assert first["samples"] >= 2 * remote.clock_burst  # the connect burst and the reset's
    assert abs(first["offset_s"] - clock.offset_at(first["at"])) <= first["uncertainty_s"]


@pytest.mark.slow
def test_recovery_cuts_where_the_engine_stopped(tmp_path: Path) -> None:
    """An engine recording against a station 6 s ahead is killed; the recovered episode is cut at
    the engine's time of its last durable record, not 6 s later."""
    clock = SkewedClock(6.0, DRIFT)
    store_root = tmp_path / "store"
    for server in serving(FakeRobot(clock=clock), clock):
        child = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("clock_engine.py")),
                server.endpoint,
                str(store_root),
                "cut",
            ],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert child.stdout is not None
            first = child.stdout.readline()
            assert first.startswith("S "), first
            time.sleep(1.5)
            killed_at, killed_wall = time.monotonic(), time.time()
            os.kill(child.pid, signal.SIGKILL)
            lines = [first, *child.stdout.read().splitlines()]
        finally:
            child.kill()
            child.wait()
            if child.stdout is not None:
                child.stdout.close()
    handed = [float(line.split()[2]) for line in lines if line.startswith("S ")]
    assert len(handed) > 50 and handed[-1] <= killed_at

    with Store.open(store_root) as store:
        outcomes = recover_all(store)
        assert [(o.episode_id, o.action) for o in outcomes] == [("cut", "recovered")]
        ep = store.read_episode("cut")
    extra = ep.meta.extra
    cut = extra["cut_at_monotonic"]
    # At most a sync interval and a period before the kill were not durable yet; never after it.
    assert killed_at - 1.0 <= cut <= killed_at, (cut - killed_at, handed[-1] - killed_at)
    assert cut >= ep.timestamps[-1]
    assert extra["cut_at"] == pytest.approx(killed_wall - (killed_at - cut), abs=0.05)
    end = ep.events[-1]
    assert end.kind is EventKind.END and end.t == cut and end.step == ep.num_steps
    assert ep.meta.ended_at == extra["cut_at"]
    true_t = check_station_times(ep, clock, killed_at)
    check_free_frames(ep, true_t, "engine")
