"""Arbitration of one control period: who drives, and how control changes hands smoothly.

The takeover state machine (:mod:`takeover.teleop.state_machine`) says who is in control. Each
period :class:`Arbiter` consumes the transitions requested since the last one (each becomes an
event at this step) and starts the blend that goes with the mode entered; then it turns the mode,
the policy's action and the operator's commands into the action of the period:

- AUTONOMOUS: the policy's action (the robot is held when there is none);
- RAMP (a hand-back): the policy's action cross-faded in from the last executed one over
  ``ramp_steps`` periods, under the hand-back speed cap (:class:`SpeedEnvelope`) until the
  policy's action fits under it; then RAMP ends;
- HUMAN: the operator's twist scaled by ``human_gain``, cross-faded from the last executed action
  over ``takeover_blend_steps`` periods after a takeover;
- HOLD and ESTOP: no end-effector motion, the gripper as last commanded.

Then the action passes the safety limits (:class:`~takeover.app.control.safety.ActionLimits`): a
refused action holds the robot, and a limit that starts to clamp is a ``limit`` event.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

from takeover.app.control.blending import CrossFade, SpeedEnvelope
from takeover.app.control.config import LoopConfig
from takeover.app.control.pacing import Clock
from takeover.app.control.safety import ActionLimits, Checked
from takeover.app.station.base import Observation
from takeover.storage.schema import ControlSource, Event, EventKind
from takeover.teleop.devices import TeleopCommand
from takeover.teleop.state_machine import Mode, Request, TakeoverStateMachine, Transition

SOURCE = {
    Mode.AUTONOMOUS: ControlSource.POLICY,
    Mode.HUMAN: ControlSource.HUMAN,
    Mode.RAMP: ControlSource.RAMP,
    Mode.HOLD: ControlSource.HOLD,
    Mode.ESTOP: ControlSource.HOLD,
}
"""The control source recorded for a step taken in each mode."""
EVENTS = {
    Request.TAKEOVER: EventKind.TAKEOVER,
    Request.HANDBACK: EventKind.HANDBACK,
    Request.HOLD: EventKind.HOLD,
    Request.RESUME: EventKind.RESUME,
    Request.ESTOP: EventKind.ESTOP,
    Request.RESET: EventKind.RESET,
    Request.RAMP_END: EventKind.RAMP_END,
}
"""The event recorded for each consumed transition."""
POLICY_MODES = (Mode.AUTONOMOUS, Mode.RAMP)
"""Modes in which the policy's action is executed."""


class Arbiter:
    """Decides each period's action (see the module's docstring). ``emit`` records an event;
    ``on_takeover(gripper_closed, t)`` runs when the human takes over, before the blend starts
    (the operator's devices take the gripper's real state and the teleop watchdog starts)."""

    def __init__(
        self,
        config: LoopConfig,
        machine: TakeoverStateMachine,
        clock: Clock,
        emit: Callable[[Event], None],
        on_takeover: Callable[[bool, float], None],
    ) -> None:
        self.config = config
        self.machine = machine
        self.clock = clock
        self._emit = emit
        self._on_takeover = on_takeover
        self._fade = CrossFade()
        self._envelope = SpeedEnvelope(dims=3)
        recent = max(1, round(config.rate_hz / 2))  # the last half second
        self._recent_steps: deque[float] = deque(maxlen=recent)
        self._limits_on: set[str] = set()
        self.last_action = np.zeros(0, dtype=np.float32)
        """The action executed in the latest period."""

    def begin(self, action_dim: int) -> None:
        """A new attempt: no blend, no history, nothing executed yet."""
        self._fade.cancel()
        self._envelope.cancel()
        self._recent_steps.clear()
        self._limits_on = set()
        self.last_action = np.zeros(action_dim, dtype=np.float32)

    def consume(self, step: int) -> None:
        """Apply the requested transitions: each one an event at ``step``, and its blend started."""
        for tr in self.machine.consume(self.clock.now()):
            self._emit(Event(EVENTS[tr.request], step, tr.t, tr.reason))
            self._enter(tr)

    def choose(
        self, mode: Mode, policy_action: np.ndarray | None, commands: list[TeleopCommand], step: int
    ) -> np.ndarray:
        """The action ``mode`` calls for, before the safety limits."""
        if mode in POLICY_MODES:
            if policy_action is None:
                self.hold_now("no policy action to execute", step)
                return self.hold_action()
            if mode is Mode.AUTONOMOUS:
                return policy_action
            out, capped = self._envelope.apply(self._fade.apply(policy_action))
            if not self._fade.active and not capped:
                self.machine.request(Request.RAMP_END, self.clock.now(), "hand-back window over")
            return out
        if mode is Mode.HUMAN:
            return self._fade.apply(self._human_action(commands))
        return self.hold_action()

    def limit(
        self, mode: Mode, wanted: np.ndarray, ee_target: np.ndarray, limits: ActionLimits, step: int
    ) -> Checked:
        """``wanted`` through the safety limits: a refused action holds the robot from this step,
        and a limit that starts to clamp is a ``limit`` event (not every period it keeps clamping)."""
        checked = limits.check(wanted, ee_target, self.hold_action())
        if checked.refused:
            self.hold_now(f"safety: {mode} action refused: {checked.refused}", step)
        new = set(checked.clamped) - self._limits_on
        if new:
            self._emit(Event(EventKind.LIMIT, step, self.clock.now(), checked.detail))
        self._limits_on = set(checked.clamped)
        return checked

    def hold_action(self) -> np.ndarray:
        """Zero end-effector delta; the gripper keeps its last command."""
        action = np.zeros_like(self.last_action)
        if len(action):
            last = float(self.last_action[-1])
            action[-1] = last if np.isfinite(last) else 0.0
        return action

    def hold_now(self, reason: str, step: int) -> None:
        """Hold the robot from this very step (a safety refusal, a recorder that cannot write)."""
        if self.machine.mode in (Mode.HOLD, Mode.ESTOP):
            return
        self.machine.request(Request.HOLD, self.clock.now(), reason)
        self.consume(step)

    def executed(self, obs: Observation, next_obs: Observation, action: np.ndarray) -> None:
        """``action`` was sent; ``obs`` and ``next_obs`` are the observations before and after.
        Keeps how far the commanded target moved, in action units (the last half second of it sets
        the speed cap of a hand-back): from the station's own targets, so a step shortened by the
        workspace box counts as short; the action where there are none."""
        self.last_action = action
        step = np.asarray(next_obs.ee_target, dtype=np.float64) - np.asarray(obs.ee_target, dtype=np.float64)
        if step.shape == (3,) and np.all(np.isfinite(step)):
            self._recent_steps.append(float(np.linalg.norm(step)) / self.config.safety.ee_delta_scale)
        else:
            self._recent_steps.append(float(np.linalg.norm(action[:3])))

    # -- internals ------------------------------------------------------------------------------
    def _enter(self, tr: Transition) -> None:
        """Start the blend that goes with entering ``tr.target``."""
        if tr.target is Mode.HUMAN:
            self._on_takeover(bool(self.last_action[-1] > 0), tr.t)
            self._fade.start(self.last_action, self.config.takeover_blend_steps)
        elif tr.target is Mode.RAMP:
            self._fade.start(self.last_action, self.config.ramp_steps)
            if self.config.handback_speed_cap:
                self._start_envelope()
        else:
            self._fade.cancel()
        if tr.target is not Mode.RAMP:
            self._envelope.cancel()

    def _start_envelope(self) -> None:
        """The hand-back speed cap: through the blend, the fastest the commanded target moved in
        the last half second, so the blend is never faster than the operator was, but at least
        an eighth of the largest step, so a hand-back from a resting operator (or a resume from
        hold) still starts moving; after the blend, rising by that cap every ``ramp_steps``
        periods until the policy's action fits under it."""
        safety = self.config.safety
        floor = safety.max_step_m / safety.ee_delta_scale / 8.0
        cap = max(max(self._recent_steps, default=0.0), floor)
        steps = max(self.config.ramp_steps, 1)
        self._envelope.start(cap, steps, cap / steps)

    def _human_action(self, commands: list[TeleopCommand]) -> np.ndarray:
        action = self.hold_action()
        active = [c for c in commands if c.connected and c.active]
        if active:
            cmd = active[0]
            action[:3] = np.clip(self.config.human_gain * cmd.twist[:3], -1.0, 1.0)
            if cmd.gripper is not None:
                action[-1] = float(cmd.gripper)
        return action
