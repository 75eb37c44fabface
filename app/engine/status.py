"""What the console sees of the engine: a loop observer that keeps the latest :class:`Status`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from takeover.app.engine.protocol import AttemptClock, SessionFigures, Status
from takeover.app.policy.protocol import VALUE_EXTRA
from takeover.app.runtime.config import AppConfig
from takeover.recorder.recorder import EpisodeRecorder
from takeover.recorder.records import EpisodeEnd, EpisodeStart, StepRecord
from takeover.storage.schema import ControlSource, Event, EventKind

if TYPE_CHECKING:
    from takeover.app.control.loop import ControlLoop

_MODE = {
    ControlSource.POLICY: "AUTONOMOUS",
    ControlSource.HUMAN: "HUMAN",
    ControlSource.RAMP: "RAMP",
    ControlSource.HOLD: "HOLD",
}
_ALERTS = {
    EventKind.HOLD: "HOLD",
    EventKind.ESTOP: "E-STOP (latched: reset to continue)",
    EventKind.RESET: "e-stop reset, robot held",
    EventKind.LIMIT: "safety limit",
}


def _end_effector(state: np.ndarray) -> np.ndarray | None:
    """The end-effector position a station's state starts with (x, y, z, in metres), for the
    state plot; None for a state too short to have one."""
    if state.ndim != 1 or state.shape[0] < 3:
        return None
    return np.asarray(state[:3], dtype=np.float32).copy()


class StatusBoard:
    """A loop observer that keeps the latest snapshot for the publisher thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status = Status(
            t=time.monotonic(),
            mode="IDLE",
            episode_active=False,
            episode_id="",
            step=0,
            episodes_done=0,
            success=False,
            message="starting the station and the policy server ...",
        )
        self._last_t: float | None = None
        self._cameras_seen: set[str] = set()
        """Cameras whose frames came with a step of this attempt (their drop counts stay listed
        when a step comes without their frame, so the panel does not flicker)."""
        self.dropped_frames: Callable[[], dict[str, int]] | None = None
        """Live dropped-frame counts per camera (the recorder's), shown to the operator."""
        self.previews: Callable[[], dict[str, np.ndarray]] | None = None
        """Small live frames of the free-running cameras, added to every published status."""
        self.missed_frames: Callable[[], dict[str, int]] | None = None
        """Live counts of frames the free-running cameras missed while down (the recorder's)."""
        self.camera_health: Callable[[], dict[str, str]] | None = None
        """Free-running camera -> 'ok' or what is wrong, added to every published status."""
        self.save_failure: Callable[[], str] | None = None
        """Why the attempt that just ended could not be stored ('' if it was; the recorder's)."""
        self._estop = False
        """A latched e-stop is shown as the mode until it is reset (also between attempts)."""

    def watch_recorder(self, recorder: EpisodeRecorder) -> None:
        """Show the recorder's frame counts, camera health and storage failures."""
        self.dropped_frames = recorder.dropped_frames
        self.missed_frames = recorder.missed_frames
        self.camera_health = recorder.camera_health
        self.save_failure = lambda: recorder.last_failure

    def snapshot(self) -> Status:
        with self._lock:
            return self._status

    def publishable(self) -> Status:
        """The snapshot with the free-running cameras' newest frames and health (also between
        attempts)."""
        status = self.snapshot()
        if self.previews is not None:
            status = replace(status, previews=self.previews())
        if self.camera_health is not None:
            status = replace(status, camera_health=self.camera_health())
        return status

    def update(self, **changes: Any) -> None:
        with self._lock:
            self._status = replace(self._status, t=time.monotonic(), **changes)

    def on_episode_start(self, start: EpisodeStart) -> None:
        self._last_t = None
        self._cameras_seen = set()
        self.update(
            timing={},
            episode_active=True,
            episode_id=start.episode_id,
            step=0,
            success=False,
            value=None,
            message=f"episode {start.episode_id} running",
        )

    def on_step(self, step: StepRecord) -> None:
        camera = next(iter(step.images), "")  # frames travel on the engine's frame socket
        timing = self.snapshot().timing
        if self._last_t is not None:
            # Period between the observations the loop acted on, smoothed for reading.
            period = 1000.0 * (step.t - self._last_t)
            timing = {"period_ms": round(0.8 * timing.get("period_ms", period) + 0.2 * period, 2)}
        self._last_t = step.t
        missed = self.missed_frames() if self.missed_frames is not None else {}
        self._cameras_seen.update(step.images)
        if self.dropped_frames is not None:
            dropped = self.dropped_frames()
            for cam in sorted(self._cameras_seen | set(dropped) | set(missed)):
                timing = {**timing, f"dropped {cam}": float(dropped.get(cam, 0))}
        for cam, n in missed.items():  # free-running cameras: frames not delivered while down
            timing = {**timing, f"missed {cam}": float(n)}
        estimate = step.extras.get(VALUE_EXTRA)  # with each chunk of a policy that has a value model
        value = float(estimate.reshape(-1)[0]) if estimate is not None and estimate.size == 1 else None
        self.update(
            value=value if value is not None else self.snapshot().value,
            timing=timing,
            mode="ESTOP" if self._estop else _MODE[step.control_source],
            step=step.index + 1,
            success=step.success,
            camera=camera,
            ee=_end_effector(step.state),
            gripper_closed=bool(step.action[3] > 0) if step.action.shape[0] >= 4 else None,
        )

    def on_event(self, event: Event) -> None:
        """Safety events become the console's message (with their reason) and may change the mode."""
        if event.kind is EventKind.ESTOP:
            self._estop = True
            self.update(mode="ESTOP")
        elif event.kind is EventKind.RESET:
            self._estop = False
            self.update(mode="HOLD")
        elif event.kind is EventKind.HOLD:
            self.update(mode="HOLD")
        alert = _ALERTS.get(event.kind)
        if alert is not None:
            self.update(message=f"{alert}: {event.reason}" if event.reason else alert)

    def on_episode_end(self, end: EpisodeEnd) -> None:
        snap = self.snapshot()
        verdict = end.outcome or ("success" if end.success else "failure")
        failure = self.save_failure() if self.save_failure is not None else ""
        if end.reason:
            msg = f"episode {snap.episode_id} STOPPED, robot held: {end.reason}"
        elif failure:
            msg = f"error: {failure}"
        elif end.discard:
            msg = f"episode {snap.episode_id} discarded"
        else:
            msg = f"episode {snap.episode_id} saved ({verdict})"
        timing = {k: float(v) for k, v in end.timing.items()}
        self.update(
            episode_active=False,
            mode="ESTOP" if self._estop else "IDLE",
            episodes_done=snap.episodes_done + (not end.discard),
            message=msg,
            timing=timing,
        )


def attempt_clock(loop: ControlLoop) -> AttemptClock:
    """The running attempt's clock, from the loop's periods (held time not counted)."""
    elapsed, limit, held = loop.clock_figures()
    return AttemptClock(round(elapsed, 3), round(limit, 3), round(held, 3))


def operator_label(config: AppConfig) -> str:
    """Who operates this session, as the session panel shows it: the name given at the start
    ('' until someone gives one; attempts then store the operator's device)."""
    return config.operator.name


class SessionTally:
    """A loop observer that keeps the session's figures (:class:`SessionFigures`) and publishes
    them at each attempt's end: attempts, verdicts, takeovers and time to the first takeover.
    Discarded attempts do not count."""

    def __init__(self, board: StatusBoard, operator: str, task: str = "") -> None:
        self.board = board
        self.operator = operator
        self.task = task
        """The station's task."""
        self.session_task = ""
        """The session's task in the operator's words (SESSION), shown instead of the station's."""
        self._lock = threading.Lock()
        self._counts = {"attempts": 0, "success": 0, "near_success": 0, "failure": 0, "interventions": 0}
        self._first: list[float] = []
        self._start_t: float | None = None
        self._takeovers: list[float] = []

    def figures(self) -> SessionFigures:
        with self._lock:
            c = self._counts
            return SessionFigures(
                operator=self.operator,
                task=self.session_task or self.task,
                attempts=c["attempts"],
                successes=c["success"],
                near_successes=c["near_success"],
                failures=c["failure"],
                interventions=c["interventions"],
                first_intervention_s=tuple(self._first),
            )

    def on_episode_start(self, start: EpisodeStart) -> None:
        self._start_t, self._takeovers = None, []

    def on_step(self, step: StepRecord) -> None:
        pass

    def on_event(self, event: Event) -> None:
        if event.kind is EventKind.START:
            self._start_t = event.t
        elif event.kind is EventKind.TAKEOVER:
            self._takeovers.append(event.t)

    def on_episode_end(self, end: EpisodeEnd) -> None:
        if not end.discard:
            verdict = end.outcome or ("success" if end.success else "failure")
            with self._lock:
                self._counts["attempts"] += 1
                if verdict in self._counts:
                    self._counts[verdict] += 1
                self._counts["interventions"] += len(self._takeovers)
                if self._takeovers and self._start_t is not None:
                    self._first.append(round(self._takeovers[0] - self._start_t, 3))
        self.board.update(session=self.figures())
