"""Drive the real EpisodeRecorder the way the control loop does, without a simulator (tests, benches),
and a camera device to unplug behind a fake ``cv2.VideoCapture`` (the lowest camera seam)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from takeover.recorder.recorder import EpisodeRecorder
from takeover.recorder.records import EpisodeEnd, EpisodeStart, StepRecord
from takeover.storage.schema import ControlSource


def start_record(episode_id: str, rate_hz: float = 200.0) -> EpisodeStart:
    return EpisodeStart(
        episode_id=episode_id,
        station="bench",
        robot="none",
        task="record",
        operator="test",
        policy_id="none",
        rate_hz=rate_hz,
        started_at=time.time(),
        seed=7,
    )


def step_record(
    i: int, t: float, images: dict[str, np.ndarray] | None = None, period_error: float | None = None
) -> StepRecord:
    state = np.full(8, i, dtype=np.float32)
    return StepRecord(
        index=i,
        t=t,
        state=state,
        action=np.full(4, 0.5 * i, dtype=np.float32),
        proposed_action=np.full(4, -0.5 * i, dtype=np.float32),
        control_source=ControlSource.HUMAN if 10 <= i < 20 else ControlSource.POLICY,
        images=images or {},
        image_times={name: t for name in images or {}},
        success=False,
        period_error=period_error,
    )


def end_record(discard: bool = False, outcome: str = "success") -> EpisodeEnd:
    return EpisodeEnd(ended_at=time.time(), success=True, outcome=outcome, discard=discard)


def record_steps(
    rec: EpisodeRecorder, episode_id: str, n: int, *, image: np.ndarray | None = None, end: bool = True
) -> None:
    rec.on_episode_start(start_record(episode_id))
    for i in range(n):
        rec.on_step(step_record(i, time.monotonic(), {"front": image} if image is not None else None, 0.0))
    if end:
        rec.on_episode_end(end_record())


class FakeVideoDevice:
    """A camera device behind fake ``cv2.VideoCapture`` objects (:meth:`open` is the factory an
    :class:`~takeover.recorder.cameras.OpenCVCamera` takes). It delivers ``fps`` frames a second
    to the capture opened last; :meth:`unplug` makes every read of an open capture fail and every
    open fail until :meth:`plug`, and a capture opened before an unplug stays dead, as a real
    device's does."""

    def __init__(self, width: int = 160, height: int = 120, fps: float = 30.0) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.opens = 0
        self._lock = threading.Lock()
        self._plugged = True
        self._generation = 0
        x = np.arange(width, dtype=np.int64)
        self._frames = [
            np.ascontiguousarray(
                np.broadcast_to(((x + 8 * k) % 256).astype(np.uint8)[None, :, None], (height, width, 3))
            )
            for k in range(16)
        ]

    def unplug(self) -> None:
        with self._lock:
            self._plugged = False
            self._generation += 1

    def plug(self) -> None:
        with self._lock:
            self._plugged = True

    def open(self, source: Any) -> FakeVideoCapture:
        with self._lock:
            self.opens += 1
            return FakeVideoCapture(self, self._generation if self._plugged else -1)

    def alive(self, generation: int) -> bool:
        with self._lock:
            return self._plugged and generation == self._generation

    def frame(self, index: int) -> np.ndarray:
        return self._frames[index % len(self._frames)]


class FakeVideoCapture:
    """What a ``cv2.VideoCapture`` of a :class:`FakeVideoDevice` does: paced frames, BGR."""

    def __init__(self, device: FakeVideoDevice, generation: int) -> None:
        self.device = device
        self.generation = generation
        self._t0 = time.monotonic()
        self._index = 0

    def isOpened(self) -> bool:  # OpenCV's name
        return self.generation >= 0

    def read(self) -> tuple[bool, Any]:
        d = self.device
        due = self._t0 + self._index / d.fps
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if not d.alive(self.generation):
            time.sleep(1.0 / d.fps)  # a dead device answers after its usual frame time, with nothing
            return False, None
        self._index += 1
        return True, d.frame(self._index)

    def set(self, prop: int, value: float) -> bool:
        return False

    def get(self, prop: int) -> float:
        d = self.device
        values = {
            cv2.CAP_PROP_FRAME_WIDTH: d.width,
            cv2.CAP_PROP_FRAME_HEIGHT: d.height,
            cv2.CAP_PROP_FPS: d.fps,
        }
        return float(values.get(prop, 0.0))

    def release(self) -> None:
        self.generation = -1


def crash_child(store_root: str, rate_hz: float = 200.0, cameras: int = 2, seed: int = 0) -> None:
    """Record attempts back to back into ``store_root`` until killed, reporting on stdout:
    ``B <id>`` when an attempt starts, ``S <id> <index> <t>`` for each step handed to the recorder,
    ``F <id>`` when it is complete in storage. The crash tests kill this process with SIGKILL."""
    import random
    import sys

    from takeover.recorder.cameras import SyntheticCamera, SyntheticCameraConfig
    from takeover.recorder.capture import CameraCapture
    from takeover.storage.store import Store

    rng = random.Random(seed)
    out = sys.stdout
    with Store.open_or_create(store_root) as store:
        rec = EpisodeRecorder(store)
        cams = [
            SyntheticCamera(SyntheticCameraConfig(name=f"cam{i}", width=160, height=120, seed=i))
            for i in range(cameras)
        ]
        captures = [CameraCapture(cam, rec.on_frame) for cam in cams]
        for cam, cap in zip(cams, captures, strict=True):
            cam.connect()
            cap.start()
        dt = 1.0 / rate_hz
        for n in range(1_000_000):
            episode_id = f"s{seed}-e{n}"
            rec.on_episode_start(start_record(episode_id, rate_hz))
            print("B", episode_id, flush=True)
            steps = int(rng.uniform(0.2, 1.5) * rate_hz)
            t0 = time.monotonic()
            for i in range(steps):
                deadline = t0 + i * dt
                delay = deadline - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                t = time.monotonic()
                rec.on_step(step_record(i, t, period_error=t - deadline))
                out.write(f"S {episode_id} {i} {t!r}\n")
                out.flush()
            discard = rng.random() < 0.1
            rec.on_episode_end(end_record(discard=discard))
            print("D" if discard else "F", episode_id, flush=True)


@dataclass
class CrashTrial:
    """What one SIGKILL trial found (see :func:`run_crash_trial`)."""

    episodes: int
    """Attempts the child started."""
    lost_s: float
    """Recorded time lost before the kill: last step handed over minus last step stored."""
    in_flight: str
    """What the kill interrupted: 'recording', 'finalize' or 'between'."""
    problems: list[str]


def run_crash_trial(store_root: Path, seed: int, kill_after_s: float) -> CrashTrial:
    """Start :func:`crash_child`, SIGKILL it ``kill_after_s`` after its first attempt began, open the
    store (which recovers), and check it: consistent, every attempt complete or recovered, and how
    much recorded time was lost."""
    import os
    import signal
    import subprocess
    import sys

    from takeover.recorder.recovery import pending_logs, recover_all
    from takeover.storage.errors import UnknownEpisodeError
    from takeover.storage.store import Store

    cmd = [sys.executable, "-m", "takeover.recorder.testing", str(store_root), str(seed)]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    assert child.stdout is not None
    first = child.stdout.readline()
    if not first.startswith("B "):
        child.kill()
        child.stdout.close()
        child.wait()
        raise RuntimeError(f"crash child did not start: {first!r}")
    time.sleep(kill_after_s)
    os.kill(child.pid, signal.SIGKILL)
    rest = child.stdout.read()
    child.stdout.close()
    child.wait()
    started: list[str] = []
    ended: dict[str, str] = {}
    last_t: dict[str, float] = {}
    first_t: dict[str, float] = {}
    for line in [first, *rest.splitlines()]:
        parts = line.split()
        if len(parts) == 2 and parts[0] == "B":
            started.append(parts[1])
        elif len(parts) == 2 and parts[0] in ("F", "D"):
            ended[parts[1]] = parts[0]
        elif len(parts) == 4 and parts[0] == "S":
            last_t[parts[1]] = float(parts[3])
            first_t.setdefault(parts[1], float(parts[3]))
    problems: list[str] = []
    lost = 0.0
    in_flight = "between"
    with Store.open(store_root) as store:
        recover_all(store)
        problems += store.check().lines()
        problems += [f"unfinished log {p.name}" for p in pending_logs(store)]
        for eid in started:
            try:
                ep = store.read_episode(eid)
            except UnknownEpisodeError:
                ep = None
            if ended.get(eid) == "D":
                if ep is not None:
                    problems.append(f"{eid}: discarded but stored")
                continue
            if eid in ended:
                if ep is None or ep.meta.extra.get("recovered"):
                    problems.append(f"{eid}: finalized but not stored as complete")
                continue
            # The attempt the kill interrupted.
            in_flight = (
                "finalize"
                if eid in last_t and ep is not None and "recovered" not in ep.meta.extra
                else "recording"
            )
            if eid not in last_t:
                continue
            stored_until = float(ep.timestamps[-1]) if ep is not None else first_t[eid]
            lost = max(0.0, last_t[eid] - stored_until)
            if ep is not None and ep.num_steps and (np.diff(ep.state[:, 0]) != 1).any():
                problems.append(f"{eid}: recovered steps are not contiguous")
            if lost > 1.0:
                problems.append(f"{eid}: {lost:.3f} s recorded before the kill were lost")
    return CrashTrial(len(started), lost, in_flight, problems)


if __name__ == "__main__":
    import sys

    crash_child(sys.argv[1], seed=int(sys.argv[2]) if len(sys.argv) > 2 else 0)
