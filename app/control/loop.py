"""The control loop: one attempt at a time, paced, arbitrated, limited, observed.

Each period, in this order (each a timed section of the :class:`CycleTimer`):

1. ``infer``: take this period's action from the current policy chunk, asking the policy for a
   new chunk when the open-loop budget is used up (the proposal is recorded also while the human
   drives); the policy watchdog and the NaN/Inf check run here.
2. ``observe``: read the input devices (they only *request* transitions), run the teleop
   watchdogs (unplug, stale input), and consume the requests in the state machine; each consumed
   transition becomes an event at this step. Reading the devices right before arbitration keeps
   the takeover latency at most one period.
3. ``arbitrate``: choose the action by mode (with the takeover and hand-back blends), then pass
   it through the safety limits.
4. ``act``: send it to the station, which returns the next observation (station watchdog).
   An observer that guards attempts (:class:`~takeover.recorder.records.GuardsAttempts`, e.g.
   a recorder whose disk is full) may say the attempt must stop: the robot is then held this
   very period and the attempt ends with that reason.
5. ``record``: tell the observers (recorder, status publisher) what this step saw and did.

Before an attempt, the same observers may refuse to let it start (:class:`AttemptRefused`).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from takeover.app.control.blending import CrossFade, SpeedEnvelope
from takeover.app.control.inference import PolicyFeed, ProposalSource
from takeover.app.control.pacing import Clock, CycleTimer
from takeover.app.control.safety import ActionLimits, SafetyConfig
from takeover.app.control.watchdog import Watchdogs
from takeover.app.station.base import ExpertOracle, Observation, Station, SyncsClock
from takeover.recorder.records import (
    AttemptPlan,
    EpisodeEnd,
    EpisodeStart,
    GuardsAttempts,
    LoopObserver,
    StepRecord,
)
from takeover.storage.schema import ControlSource, Event, EventKind
from takeover.teleop.devices import Scene, SyncsGripper, TeleopCommand, TeleopDevice, WatchesScene
from takeover.teleop.state_machine import Mode, Request, TakeoverStateMachine, Transition

log = logging.getLogger(__name__)

SOURCE = {
    Mode.AUTONOMOUS: ControlSource.POLICY,
    Mode.HUMAN: ControlSource.HUMAN,
    Mode.RAMP: ControlSource.RAMP,
    Mode.HOLD: ControlSource.HOLD,
    Mode.ESTOP: ControlSource.HOLD,
}
_EVENT = {
    Request.TAKEOVER: EventKind.TAKEOVER,
    Request.HANDBACK: EventKind.HANDBACK,
    Request.HOLD: EventKind.HOLD,
    Request.RESUME: EventKind.RESUME,
    Request.ESTOP: EventKind.ESTOP,
    Request.RESET: EventKind.RESET,
    Request.RAMP_END: EventKind.RAMP_END,
}
_POLICY_MODES = (Mode.AUTONOMOUS, Mode.RAMP)


@dataclass(frozen=True)
class LoopConfig:
    rate_hz: float = 20.0
    max_steps: int = 200
    open_loop_steps: int = 4
    """How many actions of a chunk are executed before the policy is asked again."""
    inference_lead_steps: int = 0
    """0: ask the policy for its next chunk in the period the open-loop window runs out, and wait
    for it there. n >= 1: ask on a worker thread n periods before that and keep executing the
    current chunk while the answer travels (for a policy server whose answer takes periods)."""
    human_gain: float = 1.0
    """Scale from device twist (-1..1) to the station's end-effector delta action."""
    end_on_success: bool = True
    paced: bool = True
    """False runs as fast as the station allows (data generation); time stamps stay honest."""
    ramp_steps: int = 10
    """Hand-back window: periods over which the policy's action is blended in (0 = at once)."""
    takeover_blend_steps: int = 2
    """Periods over which the human's action replaces the last executed one at takeover (0 = at once)."""
    splice_steps: int = 2
    """First actions of a new policy chunk blended with what the previous chunk had planned."""
    handback_speed_cap: bool = True
    """Through a hand-back, cap the end-effector speed at the fastest the commanded target moved in
    the last half second, then let the cap rise until the policy's action fits under it (see
    :class:`~takeover.app.control.blending.SpeedEnvelope`); RAMP lasts until the cap lets go."""
    safety: SafetyConfig = field(default_factory=SafetyConfig)

    def __post_init__(self) -> None:
        if not self.rate_hz > 0:
            raise ValueError(f"rate_hz must be positive, got {self.rate_hz}")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {self.max_steps}")
        if self.open_loop_steps < 1:
            raise ValueError(f"open_loop_steps must be at least 1, got {self.open_loop_steps}")
        for name in ("ramp_steps", "takeover_blend_steps", "splice_steps", "inference_lead_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")


@dataclass
class EpisodeControl:
    """Thread-safe stop request for the running attempt (from a view or a signal handler)."""

    _stop: threading.Event = field(default_factory=threading.Event)
    outcome: str = ""
    discard: bool = False

    def request_stop(self, outcome: str = "", discard: bool = False) -> None:
        self.outcome = outcome
        self.discard = discard
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def clear(self) -> None:
        self._stop.clear()
        self.outcome = ""
        self.discard = False


@dataclass(frozen=True)
class EpisodeResult:
    episode_id: str
    steps: int
    success: bool
    outcome: str
    discarded: bool
    events: list[Event]
    timing: dict[str, float]
    reason: str = ""
    """Why the loop ended the attempt itself ('' when it ended as asked or as configured)."""


class AttemptRefused(RuntimeError):
    """An observer refused to let an attempt start (the message says why and what to do)."""


class ControlLoop:
    def __init__(
        self,
        station: Station,
        policy: ProposalSource | None,
        devices: Sequence[TeleopDevice],
        observers: Sequence[LoopObserver],
        config: LoopConfig,
        clock: Clock | None = None,
        operator_name: str = "",
    ) -> None:
        self.station = station
        self.policy = policy
        self.devices = list(devices)
        self.observers = list(observers)
        self.config = config
        self.clock = clock or Clock()
        self.operator_name = operator_name
        self.machine = TakeoverStateMachine(ramp=config.ramp_steps > 0)
        self.control = EpisodeControl()
        self.watchdogs = Watchdogs(config.safety)
        self.feed: PolicyFeed | None = None
        if policy is not None:
            self.feed = PolicyFeed(
                policy,
                open_loop_steps=config.open_loop_steps,
                splice_steps=config.splice_steps,
                lead_steps=config.inference_lead_steps,
                watchdogs=self.watchdogs,
                clock=self.clock,
            )
        self._oracle = station if isinstance(station, ExpertOracle) else None
        self._watchers = [d for d in self.devices if isinstance(d, WatchesScene)]
        self._guards = [o for o in self.observers if isinstance(o, GuardsAttempts)]
        self._fade = CrossFade()
        self._envelope = SpeedEnvelope(dims=3)
        recent = max(1, round(config.rate_hz / 2))  # the last half second
        self._recent_steps: deque[float] = deque(maxlen=recent)
        self._events: list[Event] = []
        self._step = 0
        self._last_action = np.zeros(0, dtype=np.float32)
        self._limits_on: set[str] = set()
        self.last_timer: CycleTimer | None = None
        """The pacing of the latest attempt (period errors, sections), for benchmarks and status."""

    def request(self, request: Request, reason: str = "") -> None:
        """Ask for a transition from any thread; the loop applies it at its next period."""
        self.machine.request(request, self.clock.now(), reason)

    def start_refusal(self) -> str:
        """'' when an attempt may start, else why not (an observer's refusal, e.g. too little disk)."""
        cfg, info = self.config, self.station.info
        plan = AttemptPlan(cfg.rate_hz, cfg.max_steps, info.state_dim, info.action_dim, info.cameras)
        return next((r for r in (g.start_refusal(plan) for g in self._guards) if r), "")

    def run_episode(self, seed: int | None = None, episode_id: str | None = None) -> EpisodeResult:
        """Run one attempt. Raises :class:`AttemptRefused`, before anything moves, when an observer
        refuses to let it start."""
        cfg = self.config
        info = self.station.info
        refusal = self.start_refusal()
        if refusal:
            raise AttemptRefused(refusal)
        episode_id = episode_id or uuid.uuid4().hex[:12]
        self.machine.reset(Mode.AUTONOMOUS if self.policy is not None else Mode.HOLD)
        for watcher in self._watchers:
            watcher.begin_attempt()
        limits = ActionLimits.for_station(cfg.safety, info)
        timer = CycleTimer(cfg.rate_hz, clock=self.clock)
        self.last_timer = timer
        obs = self.station.reset(seed)
        start = EpisodeStart(
            episode_id=episode_id,
            station=info.name,
            robot=info.robot,
            task=info.task,
            operator=self.operator_name,
            policy_id=self.policy.policy_id if self.policy is not None else "none",
            rate_hz=cfg.rate_hz,
            started_at=time.time(),
            seed=seed,
            extra=self._clock_extra(),
        )
        for o in self.observers:
            o.on_episode_start(start)
        self._events = []
        self._step = 0
        if self.feed is not None:
            self.feed.begin()
        self._fade.cancel()
        self._envelope.cancel()
        self._recent_steps.clear()
        self._limits_on = set()
        self._last_action = np.zeros(info.action_dim, dtype=np.float32)
        self.watchdogs.begin(self.clock.now())
        self._emit(Event(EventKind.START, 0, obs.t, f"mode {self.machine.mode}"))
        timer.start()
        halt = ""
        while True:
            with timer.section("infer"):
                proposed, policy_action, extras = self._propose(obs, info.action_dim)
            with timer.section("observe"):
                commands = self._read_devices(obs, proposed)
                self._consume()
            mode = self.machine.mode
            with timer.section("arbitrate"):
                wanted = self._arbitrate(mode, policy_action, commands)
                checked = limits.check(wanted, obs.ee_target, self._hold_action())
                if checked.refused:
                    self._hold_now(f"safety: {mode} action refused: {checked.refused}")
                    mode = self.machine.mode
                self._note_limits(checked.clamped, checked.detail)
                action = checked.action
            with timer.section("act"):
                halt = self._halt_reason()
                if halt:  # hold the robot now; the attempt ends after this period
                    self._hold_now(halt)
                    mode = self.machine.mode
                    action = self._hold_action()
                t_act = self.clock.now()
                next_obs = self.station.act(action)
                slow = self.watchdogs.station(self.clock.now() - t_act)
            if slow and self.machine.mode is not Mode.ESTOP:
                self.machine.request(Request.HOLD, self.clock.now(), slow)
            with timer.section("record"):
                record = StepRecord(
                    index=self._step,
                    t=obs.t,
                    state=obs.state,
                    action=action,
                    proposed_action=proposed,
                    control_source=SOURCE[mode],
                    images=obs.images,
                    image_times=obs.image_times,
                    success=next_obs.success,
                    # How late this period started (honest time: overruns stay in the data).
                    period_error=timer.last_period_error if self._step > 0 else 0.0,
                    extras=extras,
                    station_t=obs.station_times.t if obs.station_times else None,
                    station_image_times=obs.station_times.image_times if obs.station_times else {},
                    clock=obs.station_times.estimate if obs.station_times else None,
                )
                for o in self.observers:
                    o.on_step(record)
            self._last_action = action
            self._note_step(obs, next_obs, action)
            obs = next_obs
            self._step += 1
            if (
                halt
                or (cfg.end_on_success and obs.success)
                or self._step >= cfg.max_steps
                or self.control.stop_requested
            ):
                break
            if cfg.paced:
                timer.wait()
        # Between attempts the policy client is its owner's again (who may close it): wait for a
        # request still in flight, at most twice the policy watchdog's limit.
        drain_s = 2.0 * cfg.safety.policy_timeout_ms / 1000.0
        if self.feed is not None and not self.feed.end(drain_s):
            log.warning("a policy request is still unanswered %.1f s after the attempt ended", drain_s)
        outcome, discard = self.control.outcome, self.control.discard
        self.control.clear()
        if halt:
            log.error("attempt %s stopped, robot held: %s", episode_id, halt)
        self._emit(Event(EventKind.END, self._step, self.clock.now(), halt or outcome))
        timing = timer.summary()
        end = EpisodeEnd(time.time(), obs.success, outcome, discard, timing, reason=halt)
        for o in self.observers:
            o.on_episode_end(end)
        events = list(self._events)
        success = bool(obs.success)
        return EpisodeResult(episode_id, self._step, success, outcome, discard, events, timing, halt)

    def _clock_extra(self) -> dict[str, Any]:
        """The station clock's estimate as the attempt starts, for a station with a clock of its own."""
        station = self.station
        estimate = station.clock_estimate() if isinstance(station, SyncsClock) else None
        return {"station_clock_start": estimate.as_dict()} if estimate is not None else {}

    def close(self) -> None:
        """Release what the loop itself started (the policy prefetch thread). The station, policy
        and devices belong to whoever built the loop."""
        if self.feed is not None:
            self.feed.close()

    # -- the sections ---------------------------------------------------------------------
    def _propose(
        self, obs: Observation, action_dim: int
    ) -> tuple[np.ndarray, np.ndarray | None, dict[str, np.ndarray]]:
        """(raw proposal to record, spliced action for the policy to execute or None, the extra
        outputs of a chunk that arrived this period)."""
        if self.feed is None:
            return np.full(action_dim, np.nan, dtype=np.float32), None, {}
        got = self.feed.next(obs.state, self._step, action_dim, self.machine.mode in _POLICY_MODES)
        if got.hold:
            self.machine.request(Request.HOLD, self.clock.now(), got.hold)
        return got.proposed, got.action, got.extras

    def _read_devices(self, obs: Observation, proposed: np.ndarray) -> list[TeleopCommand]:
        commands = []
        mode = self.machine.mode
        if self._watchers:
            scene = Scene(
                ee_target=obs.ee_target,
                proposed=proposed if np.all(np.isfinite(proposed)) else None,
                expert=self._oracle.expert_action() if self._oracle is not None else None,
                mode=mode,
            )
            for watcher in self._watchers:
                watcher.observe(scene)
        for dev in self.devices:
            cmd = dev.read()
            for req in cmd.requests:
                self.machine.request(req, cmd.t, cmd.reason or dev.name)
            commands.append(cmd)
        now = self.clock.now()
        stale, unplugged = self.watchdogs.teleop([d.name for d in self.devices], commands, now)
        if mode is Mode.HUMAN and unplugged:
            self.machine.request(Request.HOLD, now, f"alert: {unplugged}")
        elif mode is Mode.HUMAN and stale:
            self.machine.request(Request.HOLD, now, stale)
        return commands

    def _consume(self) -> None:
        for tr in self.machine.consume(self.clock.now()):
            self._emit(Event(_EVENT[tr.request], self._step, tr.t, tr.reason))
            self._enter(tr)

    def _enter(self, tr: Transition) -> None:
        """Start the blend that goes with entering ``tr.target``."""
        if tr.target is Mode.HUMAN:
            self._sync_grippers(bool(self._last_action[-1] > 0))
            self.watchdogs.touch_teleop(tr.t)
            self._fade.start(self._last_action, self.config.takeover_blend_steps)
        elif tr.target is Mode.RAMP:
            self._fade.start(self._last_action, self.config.ramp_steps)
            if self.config.handback_speed_cap:
                self._start_envelope()
        else:
            self._fade.cancel()
        if tr.target is not Mode.RAMP:
            self._envelope.cancel()

    def _note_step(self, obs: Observation, next_obs: Observation, action: np.ndarray) -> None:
        """Keep how far the commanded target moved this period, in action units (the last half
        second of it sets the speed cap of a hand-back). From the station's own targets, so a
        step shortened by the workspace box counts as short; the action where there are none."""
        step = np.asarray(next_obs.ee_target, dtype=np.float64) - np.asarray(obs.ee_target, dtype=np.float64)
        if step.shape == (3,) and np.all(np.isfinite(step)):
            self._recent_steps.append(float(np.linalg.norm(step)) / self.config.safety.ee_delta_scale)
        else:
            self._recent_steps.append(float(np.linalg.norm(action[:3])))

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

    def _arbitrate(
        self, mode: Mode, policy_action: np.ndarray | None, commands: list[TeleopCommand]
    ) -> np.ndarray:
        if mode in _POLICY_MODES:
            if policy_action is None:
                self._hold_now("no policy action to execute")
                return self._hold_action()
            if mode is Mode.AUTONOMOUS:
                return policy_action
            out, capped = self._envelope.apply(self._fade.apply(policy_action))
            if not self._fade.active and not capped:
                self.machine.request(Request.RAMP_END, self.clock.now(), "hand-back window over")
            return out
        if mode is Mode.HUMAN:
            return self._fade.apply(self._human_action(commands))
        return self._hold_action()

    def _human_action(self, commands: list[TeleopCommand]) -> np.ndarray:
        action = self._hold_action()
        active = [c for c in commands if c.connected and c.active]
        if active:
            cmd = active[0]
            action[:3] = np.clip(self.config.human_gain * cmd.twist[:3], -1.0, 1.0)
            if cmd.gripper is not None:
                action[-1] = float(cmd.gripper)
        return action

    # -- helpers ------------------------------------------------------------------------
    def _hold_action(self) -> np.ndarray:
        """Zero end-effector delta; the gripper keeps its last command."""
        action = np.zeros_like(self._last_action)
        if len(action):
            last = float(self._last_action[-1])
            action[-1] = last if np.isfinite(last) else 0.0
        return action

    def _halt_reason(self) -> str:
        return next((r for r in (g.halt_reason() for g in self._guards) if r), "")

    def _hold_now(self, reason: str) -> None:
        """Hold the robot from this very step (safety refusals)."""
        if self.machine.mode in (Mode.HOLD, Mode.ESTOP):
            return
        self.machine.request(Request.HOLD, self.clock.now(), reason)
        self._consume()

    def _note_limits(self, clamped: tuple[str, ...], detail: str) -> None:
        """A LIMIT event when a limit starts to clamp (not every period it keeps clamping)."""
        new = set(clamped) - self._limits_on
        if new:
            self._emit(Event(EventKind.LIMIT, self._step, self.clock.now(), detail))
        self._limits_on = set(clamped)

    def _sync_grippers(self, closed: bool) -> None:
        """At a takeover the devices' gripper toggles start from the gripper's real state."""
        for dev in self.devices:
            if isinstance(dev, SyncsGripper):
                dev.sync_gripper(closed)

    def _emit(self, event: Event) -> None:
        self._events.append(event)
        for o in self.observers:
            o.on_event(event)
