"""A disk that really fills (a small tmpfs) under a real control loop and recorder: the robot is
held within one period of the recorder failing, the attempt ends with that reason and says so;
`takeover doctor --repair` on the full disk says so in one line; a new attempt is refused before
anything moves; with space again the attempt is recovered."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from takeover.app.control.inference import Proposal
from takeover.app.control.loop import AttemptRefused, ControlLoop, LoopConfig
from takeover.app.engine.status import StatusBoard
from takeover.app.station.base import Observation, Station, StationInfo
from takeover.recorder.recorder import EpisodeRecorder
from takeover.recorder.recovery import pending_logs
from takeover.recorder.settings import RecorderConfig
from takeover.storage.schema import ControlSource, EventKind
from takeover.storage.store import Store
from takeover.storage.testing_fs import fill

pytestmark = pytest.mark.slow

RATE = 50.0
PERIOD = 1.0 / RATE
FILL_AT_STEP = 20


class NoisyStation(Station):
    """A point that moves by the commanded delta, filmed by a camera of noise (frames that do not
    compress, so the log grows fast). Remembers when each action was sent."""

    def __init__(self, on_step: Callable[[int], None]) -> None:
        self.on_step = on_step
        self.pos = np.zeros(3, dtype=np.float32)
        self.acts: list[tuple[float, np.ndarray]] = []
        self.resets = 0
        rng = np.random.default_rng(0)
        self._images = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(8)]

    def connect(self) -> None:
        pass

    def close(self) -> None:
        pass

    @property
    def info(self) -> StationInfo:
        return StationInfo("noisy", "point", "reach", 4, 3, ("front",), RATE, (-1.0,) * 4, (1.0,) * 4)

    def _obs(self) -> Observation:
        t = time.monotonic()
        image = self._images[len(self.acts) % len(self._images)]
        return Observation(t, self.pos.copy(), self.pos.copy(), {"front": image}, {"front": t})

    def reset(self, seed: int | None = None) -> Observation:
        self.resets += 1
        self.pos[:] = 0
        return self._obs()

    def act(self, action: np.ndarray) -> Observation:
        self.acts.append((time.monotonic(), action.copy()))
        self.pos += 0.001 * action[:3]
        self.on_step(len(self.acts))
        return self._obs()


class SteadyPolicy:
    policy_id = "steady"

    def infer(self, state: np.ndarray, step: int) -> Proposal:
        return Proposal(step, np.tile(np.array([0.5, 0.0, 0.0, 1.0], dtype=np.float32), (4, 1)))


def _doctor(store: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "takeover.app.cli", "doctor", "--repair", "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )


def test_a_disk_filling_mid_attempt_holds_the_robot_and_ends_the_attempt(
    small_disk: Callable[[int], Path], caplog: pytest.LogCaptureFixture
) -> None:
    disk = small_disk(48)
    filler: list[Path] = []

    def on_step(n: int) -> None:
        if n == FILL_AT_STEP and not filler:
            filler.append(fill(disk))  # another writer takes the rest of the disk

    station = NoisyStation(on_step)
    with Store.create(disk / "store") as store:
        rec = EpisodeRecorder(store)
        board = StatusBoard()
        board.watch_recorder(rec)
        loop = ControlLoop(
            station,
            SteadyPolicy(),
            [],
            [rec, board],
            LoopConfig(rate_hz=RATE, max_steps=150, end_on_success=False),
        )
        with caplog.at_level(logging.WARNING):
            result = loop.run_episode(seed=0)
        loop.close()

        # The attempt ended by itself, for that reason, well before its step limit.
        assert "no space left on the disk of" in result.reason and result.steps < 100
        assert filler and rec.last_failure_at is not None
        failed_at = rec.last_failure_at
        # Within one period: at most the act already under way when the log failed is a motion;
        # the next one holds the robot, and it is the last.
        after = [(t, a) for t, a in station.acts if t > failed_at]
        assert 1 <= len(after) <= 2
        assert np.all(after[-1][1][:3] == 0) and after[-1][1][3] == 1.0  # held, gripper kept
        assert all(np.any(a[:3] != 0) for _, a in station.acts[: -len(after)])
        hold = [e for e in result.events if e.kind is EventKind.HOLD]
        end = result.events[-1]
        assert [e.reason for e in hold] == [result.reason] and hold[0].step == result.steps - 1
        assert end.kind is EventKind.END and end.reason == result.reason
        # Said so: console status, one log line each (no traceback), and the recorder's failure.
        assert board.snapshot().message.startswith(f"episode {result.episode_id} STOPPED, robot held: ")
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors and all(r.exc_info is None for r in errors)
        assert any("no space left" in r.getMessage() for r in errors)
        assert rec.last_failure.startswith(f"episode {result.episode_id} not saved: no space left")
        assert store.list_episodes() == [] and [p.name for p in pending_logs(store)] == [result.episode_id]
        assert board.snapshot().timing.get("dropped front", 0) >= 0

        # A new attempt on the full disk is refused before the station is even reset.
        resets = station.resets
        with pytest.raises(AttemptRefused, match=r"not enough disk space .* may need .* MB free"):
            loop.run_episode(seed=1)
        assert station.resets == resets and loop.start_refusal()
        # Without the check, an attempt whose log cannot even be created holds from its first period.
        unguarded = EpisodeRecorder(store, RecorderConfig(disk_margin=0))
        loop2 = ControlLoop(station, SteadyPolicy(), [], [unguarded], LoopConfig(rate_hz=RATE, max_steps=150))
        second = loop2.run_episode(seed=2)
        loop2.close()
        assert second.steps == 1 and "no space left" in second.reason
        assert np.all(station.acts[-1][1][:3] == 0)

    # doctor on the full disk: one line and exit 2, no traceback.
    full = _doctor(disk / "store")
    assert full.returncode == 2, full.stderr
    assert full.stderr.startswith("error: no space left on the disk of ") and full.stderr.count("\n") == 1
    assert "doctor --repair" in full.stderr and "Traceback" not in full.stderr + full.stdout

    # With space again, the attempt is recovered up to its last durable record.
    filler[0].unlink()
    fixed = _doctor(disk / "store")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert f"recovered {result.episode_id}" in fixed.stdout
    with Store.open(disk / "store") as store:
        ep = store.read_episode(result.episode_id)
        assert ep.meta.extra["recovered"] and 0 < ep.num_steps <= result.steps
        assert ep.control_source[0] == int(ControlSource.POLICY)


def test_headless_run_on_a_disk_too_small_for_an_attempt_refuses_in_one_line(
    small_disk: Callable[[int], Path],
) -> None:
    disk = small_disk(8)
    (disk / "store").mkdir()  # a store named on the command line must exist
    run = ["run", "--headless", "--no-policy", "--episodes", "1", "--operator", "scripted"]
    done = subprocess.run(
        [sys.executable, "-m", "takeover.app.cli", *run, "--store", str(disk / "store")],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")},
    )
    assert done.returncode == 2, done.stdout + done.stderr
    line = done.stderr.strip()
    assert line.startswith("error: episode 1/1 not started: not enough disk space to record an attempt")
    assert "\n" not in line and "MB free" in line and "[recorder] disk_margin" in line
    with Store.open(disk / "store") as store:
        assert store.list_episodes() == [] and pending_logs(store) == []
