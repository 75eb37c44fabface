"""A scripted operator: the task's expert takes over when the policy stalls or drifts.

It stands in for a person in headless runs, tests and benchmarks. Each period the control
loop shows it what a person at the station would see (:meth:`ScriptedOperator.observe`):
the end-effector position, the policy's proposed action, the expert's action, the current
mode and, where the station reports it, the attempt's progress. It asks for a takeover when

- the policy *stalls*: the end-effector moved less than ``stall_distance`` over the last
  ``stall_steps`` periods, or
- the policy *drifts*: the proposed motion points away from the expert's (cosine below
  ``drift_cosine``) for ``drift_steps`` periods in a row,

drives with the expert's action while in control, and hands back once the attempt is back on
track, as a competent person would. Where the station tells how far the attempt has come
(:attr:`Scene.progress`: the task's sub-tasks in order, for pick-place the object grasped and
lifted, then the task done), that is once one more sub-task is done than when it took over, and
has stayed done for ``settle_steps`` periods; each further takeover in the same attempt asks for
one sub-task more (a person who had to step in again lets the policy try less), and where that
is the whole task it drives to the end. If no sub-task gets done for ``retry_after`` periods while
it drives (the expert chasing an object the policy left badly held), it lets go and starts over:
gripper open, straight up for ``release_steps`` periods, then the expert again. Where the station
does not say, it hands back after ``handback_after`` periods, twice as long for each further
takeover. After a hand-back it waits ``cooldown_steps`` before judging the policy again.
With ``always_drive`` it takes over at once and never hands back (expert demonstrations).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from takeover.teleop.devices import Scene, TaskProgress, TeleopCommand, TeleopDevice, TeleopRequest
from takeover.teleop.state_machine import Mode


@dataclass(frozen=True)
class ScriptedOperatorConfig:
    stall_steps: int = 12
    stall_distance: float = 0.01
    drift_steps: int = 6
    drift_cosine: float = 0.0
    min_expert_speed: float = 0.2
    """Drift is judged only while the expert itself wants to move at least this fast."""
    handback_after: int = 25
    """Periods in control before handing back, where the station does not report progress."""
    settle_steps: int = 5
    """Periods the sub-task must stay done before handing back (a lift that is still settling)."""
    retry_after: int = 60
    """Periods in control without a sub-task done before letting go and starting over."""
    release_steps: int = 15
    """Periods of letting go (gripper open, moving up) when starting over."""
    judge_progress: bool = True
    """False: hand back after ``handback_after`` periods even where the station reports progress
    (the fixed rule, for comparisons)."""
    cooldown_steps: int = 15
    grace_steps: int = 10
    """Periods at the start of an attempt before the policy is judged."""
    always_drive: bool = False

    def __post_init__(self) -> None:
        for name in ("stall_steps", "drift_steps", "handback_after", "settle_steps", "retry_after"):
            if getattr(self, name) < 1:
                raise ValueError(f"ScriptedOperatorConfig.{name} must be at least 1")


class ScriptedOperator(TeleopDevice):
    name = "scripted"

    def __init__(self, config: ScriptedOperatorConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self._clock = clock
        self._positions: deque[np.ndarray] = deque(maxlen=config.stall_steps + 1)
        self._drift_run = 0
        self._human_steps = 0
        self._on_track = 0
        self._progress: TaskProgress | None = None
        self._done_at_takeover = 0
        self._since_handback = config.cooldown_steps
        self._steps = 0
        self._takeovers = 0
        self._expert = np.zeros(4, dtype=np.float32)
        self._drive = np.zeros(4, dtype=np.float32)
        """What the operator sends while in control: the expert's action, or letting go."""
        self._since_gain = 0
        self._release_left = 0
        self.retries = 0
        """Times the operator let go and started over, over all attempts (for logs and benches)."""
        self._pending: list[TeleopRequest] = []
        self.reasons: list[str] = []
        """Why each takeover was asked for, in order (for logs and tests)."""

    def connect(self) -> None:
        self.begin_attempt()

    def close(self) -> None:
        self._pending.clear()

    def begin_attempt(self) -> None:
        self._positions.clear()
        self._drift_run = 0
        self._human_steps = 0
        self._on_track = 0
        self._progress = None
        self._done_at_takeover = 0
        self._since_gain = 0
        self._release_left = 0
        self._since_handback = self.config.cooldown_steps
        self._steps = 0
        self._takeovers = 0
        self._pending.clear()

    def observe(self, scene: Scene) -> None:
        """Look at the station this period; may queue a takeover or hand-back request. Without an
        expert action (a station with no oracle) there is nothing to judge or drive with."""
        if scene.expert is None:
            return
        cfg = self.config
        mode = scene.mode
        proposed = scene.proposed
        self._expert = np.asarray(scene.expert, dtype=np.float32)
        before, self._progress = self._progress, scene.progress
        self._drive = self._expert
        self._steps += 1
        self._positions.append(np.asarray(scene.ee_target, dtype=np.float64).copy())
        if cfg.always_drive:
            if mode is not Mode.HUMAN:
                self._ask(TeleopRequest.TAKEOVER, "demonstration")
            return
        if mode is Mode.HUMAN:
            self._human_steps += 1
            self._start_over_if_stuck(before)
            if self._back_on_track():
                self._pending.append(TeleopRequest.HANDBACK)
                self._human_steps = 0
                self._since_handback = 0
                self._positions.clear()
                self._drift_run = 0
            return
        if mode is not Mode.AUTONOMOUS:
            return
        self._since_handback += 1
        if self._steps <= cfg.grace_steps or self._since_handback < cfg.cooldown_steps:
            return
        if proposed is not None and np.all(np.isfinite(proposed)):
            want = self._expert[:3]
            got = np.asarray(proposed[:3], dtype=np.float64)
            speed = float(np.linalg.norm(want))
            if speed >= cfg.min_expert_speed:
                cos = float(np.dot(want, got) / (speed * max(float(np.linalg.norm(got)), 1e-9)))
                self._drift_run = self._drift_run + 1 if cos < cfg.drift_cosine else 0
            else:
                self._drift_run = 0
            if self._drift_run >= cfg.drift_steps:
                self._ask(TeleopRequest.TAKEOVER, "drift")
                return
        if len(self._positions) == self._positions.maxlen:
            moved = float(np.linalg.norm(self._positions[-1] - self._positions[0]))
            if moved < cfg.stall_distance:
                self._ask(TeleopRequest.TAKEOVER, "stall")

    def _start_over_if_stuck(self, before: TaskProgress | None) -> None:
        """While in control: let go and start over when no sub-task got done for a long time."""
        progress = self._progress if self.config.judge_progress else None
        if progress is None:
            return
        if self._release_left > 0:
            self._release_left -= 1
            self._drive = np.array([0.0, 0.0, 1.0, -1.0], dtype=np.float32)
            return
        gained = before is not None and progress.done > before.done
        self._since_gain = 0 if gained else self._since_gain + 1
        if self._since_gain >= self.config.retry_after and self.config.release_steps > 0:
            self._since_gain = 0
            self._release_left = self.config.release_steps - 1
            self._drive = np.array([0.0, 0.0, 1.0, -1.0], dtype=np.float32)
            self.retries += 1

    def _back_on_track(self) -> bool:
        """While in control: is the attempt back on track, so that the policy may have it again?"""
        progress = self._progress if self.config.judge_progress else None
        if progress is None:
            return self._human_steps >= self.config.handback_after * 2 ** max(self._takeovers - 1, 0)
        need = self._done_at_takeover + self._takeovers
        if need >= progress.stages:
            return False  # the rest of the task is this takeover's: drive to the end
        self._on_track = self._on_track + 1 if progress.done >= need else 0
        return self._on_track >= self.config.settle_steps

    def _ask(self, request: TeleopRequest, reason: str) -> None:
        self._pending.append(request)
        self._takeovers += 1
        self.reasons.append(reason)
        self._drift_run = 0
        self._human_steps = 0
        self._on_track = 0
        self._since_gain = 0
        self._release_left = 0
        self._done_at_takeover = self._progress.done if self._progress is not None else 0
        self._positions.clear()

    def read(self) -> TeleopCommand:
        requests = tuple(self._pending)
        self._pending.clear()
        reason = (
            f"{self.name}: {self.reasons[-1]}" if TeleopRequest.TAKEOVER in requests and self.reasons else ""
        )
        twist = np.zeros(6, dtype=np.float32)
        twist[:3] = np.clip(self._drive[:3], -1.0, 1.0)
        # The expert's gripper effort is absolute (0 = relaxed), so it is always sent.
        gripper = float(np.clip(self._drive[3], -1.0, 1.0))
        return TeleopCommand(
            t=self._clock(),
            twist=twist,
            gripper=gripper,
            requests=requests,
            active=True,
            connected=True,
            reason=reason,
        )
