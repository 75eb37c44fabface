"""Cameras rendered off the loop: a child process renders snapshots of the simulation's state."""

from __future__ import annotations

import os
import signal
import time
from types import SimpleNamespace

import numpy as np
import pytest

from takeover.app.engine.health import HealthMonitor
from takeover.app.station.base import Observation
from takeover.app.station.metaworld_sim import MetaWorldConfig, MetaWorldStation

pytestmark = pytest.mark.sim

CAMERAS = ("corner", "gripperPOV")


def test_act_excludes_the_render_and_frames_show_the_state_of_the_step_they_are_stamped_with() -> None:
    """50 Hz, two cameras: act() costs about what physics alone costs (the inline render is timed
    beside it), and every frame equals an inline render of the state of the observation whose time
    it carries."""
    rate = 50.0
    off = MetaWorldConfig(cameras=CAMERAS, width=96, height=72, rate_hz=rate, render="process")
    inline = MetaWorldConfig(cameras=CAMERAS, width=96, height=72, rate_hz=rate)
    with MetaWorldStation(off) as station, MetaWorldStation(inline) as reference:
        worker = station.render_worker
        assert worker is not None and worker.running
        observations: list[Observation] = [station.reset(5)]
        states = {observations[0].t: station._snapshot(observations[0].t)}
        act_s, period = [], 1.0 / rate
        rng = np.random.default_rng(0)
        t0 = time.monotonic()
        for i in range(50):
            action = rng.uniform(-1, 1, 4).astype(np.float32)
            start = time.monotonic()
            obs = station.act(action)
            act_s.append(time.monotonic() - start)
            states[obs.t] = station._snapshot(obs.t)
            observations.append(obs)
            time.sleep(max(0.0, t0 + (i + 1) * period - time.monotonic()))
        time.sleep(0.2)
        observations.append(station.act(np.zeros(4, np.float32)))  # collects the last frames

        reference.reset(5)
        inline_s = []
        for _ in range(10):
            start = time.monotonic()
            reference.act(np.zeros(4, np.float32))
            inline_s.append(time.monotonic() - start)
        assert np.median(act_s) < 0.5 * np.median(inline_s), (np.median(act_s), np.median(inline_s))

        shown = [
            (name, obs.image_times[name], image) for obs in observations for name, image in obs.images.items()
        ]
        assert {name for name, _, _ in shown} == set(CAMERAS)
        assert len(shown) >= 20, "frames at the camera rate reach the observations"
        for obs in observations:
            assert obs.rendered_earlier == frozenset(obs.images)
            assert all(obs.image_times[n] <= obs.t for n in obs.images)
        # Each frame is stamped with the time of a snapshot, and shows exactly that state.
        checked = 0
        for name, t, image in shown[:: max(1, len(shown) // 8)]:
            assert t in states
            state = states[t]
            data = reference._env.data
            data.qpos[:], data.qvel[:] = state.qpos, state.qvel
            data.mocap_pos[:], data.mocap_quat[:] = state.mocap_pos, state.mocap_quat
            import mujoco

            mujoco.mj_forward(reference._env.model, data)
            expected = reference._render()[0][name]
            diff = np.abs(image.astype(np.int16) - expected.astype(np.int16))
            assert diff.mean() < 1.0, f"{name} at {t}: mean difference {diff.mean():.2f}"
            checked += 1
        assert checked >= 4


def test_a_render_process_that_dies_is_reported_and_the_station_keeps_stepping() -> None:
    config = MetaWorldConfig(cameras=("corner",), width=64, height=48, render="process")
    with MetaWorldStation(config) as station:
        worker = station.render_worker
        assert worker is not None and worker.pid is not None
        station.reset(1)
        os.kill(worker.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while not worker.failure and time.monotonic() < deadline:
            station.act(np.zeros(4, np.float32))
            time.sleep(0.02)
        assert "render process" in worker.failure
        assert not worker.running
        obs = station.act(np.zeros(4, np.float32))  # physics goes on; no frames come
        assert obs.images == {}
        # The console's health panel says so, in red, with the reason.
        monitor = HealthMonitor()
        monitor.runtime = SimpleNamespace(station=station, loop=None)  # type: ignore[assignment]
        item = monitor._station(monitor.runtime)  # type: ignore[arg-type]
        assert item.level == "error" and item.detail.startswith("cameras not rendered: ")
        assert worker.failure in item.detail
    assert station.render_worker is None


def test_the_scene_is_shown_between_attempts_without_stepping() -> None:
    """show_scene() renders the state as it is, stamped now: the console's view stays live between
    attempts, the simulation does not move, and such frames never join the next attempt."""
    config = MetaWorldConfig(cameras=CAMERAS, width=96, height=72, render="process")
    with MetaWorldStation(config) as station:
        seen: list[tuple[str, float]] = []
        station.add_frame_listener(lambda name, _image, t: seen.append((name, t)))
        station.reset(3)
        station.act(np.zeros(4, np.float32))
        steps, qpos = station.steps, station._env.data.qpos.copy()
        time.sleep(0.3)
        before = time.monotonic()
        for _ in range(3):
            station.show_scene()
            time.sleep(0.15)
        assert station.steps == steps and np.array_equal(station._env.data.qpos, qpos)
        fresh = {name for name, t in seen if t >= before}
        assert fresh == set(CAMERAS), seen[-6:]
        obs = station.reset(4)  # the next attempt: nothing rendered before its reset is its own
        later = station.act(np.zeros(4, np.float32))
        assert all(t >= obs.t for t in later.image_times.values())
