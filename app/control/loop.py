"""The control loop: one attempt at a time, paced, arbitrated, limited, observed.

:class:`ControlLoop` owns the attempt's lifecycle: it asks its observers whether an attempt may
start, resets the station, tells the observers the attempt started, runs its periods until it
ends (success, ``max_steps``, a stop request, or a reason to halt) and tells them how it ended.
Each period, in this order (each a timed section of the :class:`CycleTimer`):

1. ``infer``: take this period's action from the current policy chunk, asking the policy for a
   new chunk when the open-loop budget is used up (the proposal is recorded also while the human
   drives); the policy watchdog and the NaN/Inf check run here
   (:class:`~takeover.app.control.inference.PolicyFeed`).
2. ``observe``: read the input devices (they only *request* transitions), run the teleop
   watchdogs (unplug, stale input) (:class:`~takeover.app.control.teleop_input.TeleopInput`), and
   consume the requests in the state machine; each consumed transition becomes an event at this
   step. Reading the devices right before arbitration keeps the takeover latency at most one
   period.
3. ``arbitrate``: choose the action by mode (with the takeover and hand-back blends), then pass
   it through the safety limits (:class:`~takeover.app.control.arbitration.Arbiter`).
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from takeover.app.control.arbitration import POLICY_MODES, SOURCE, Arbiter
from takeover.app.control.config import LoopConfig
from takeover.app.control.inference import PolicyFeed, ProposalSource
from takeover.app.control.pacing import Clock, CycleTimer
from takeover.app.control.safety import ActionLimits
from takeover.app.control.teleop_input import TeleopInput
from takeover.app.control.watchdog import Watchdogs
from takeover.app.station.base import (
    ExpertOracle,
    HoldsStill,
    Observation,
    ReportsProgress,
    Station,
    SyncsClock,
)
from takeover.recorder.records import (
    AttemptPlan,
    EpisodeEnd,
    EpisodeStart,
    GuardsAttempts,
    LoopObserver,
    StepRecord,
)
from takeover.storage.schema import Event, EventKind
from takeover.teleop.devices import TeleopDevice
from takeover.teleop.state_machine import Mode, Request, TakeoverStateMachine, Transition

log = logging.getLogger(__name__)

__all__ = ["NOT_RUNNING", "AttemptRefused", "ControlLoop", "EpisodeControl", "EpisodeResult", "LoopConfig"]

NOT_RUNNING = "no attempt is running: press Start first"
"""Why a request made between attempts (takeover, hand-back, hold, resume, keys) is refused."""
HELD_MODES = (Mode.HOLD, Mode.ESTOP)
"""Modes whose periods do not count against the attempt's limit (and do not step a station that
can be held still)."""


@dataclass
class EpisodeControl:
    """Thread-safe stop request for the running attempt (from a view or a signal handler)."""

    _stop: threading.Event = field(default_factory=threading.Event)
    outcome: str = ""
    discard: bool = False
    end_reason: str = ""
    note: str = ""

    def request_stop(
        self, outcome: str = "", discard: bool = False, end_reason: str = "", note: str = ""
    ) -> None:
        """End the running attempt: the operator's ``outcome`` ('' leaves it to the station's
        flag) and ``note``, ``discard`` it, and why it ended (``end_reason``, see
        :data:`~takeover.storage.schema.END_REASONS`; '' means the operator stopped it)."""
        self.outcome = outcome
        self.discard = discard
        self.end_reason = end_reason
        self.note = note
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def clear(self) -> None:
        self._stop.clear()
        self.outcome = ""
        self.discard = False
        self.end_reason = ""
        self.note = ""


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
        attended: bool = False,
    ) -> None:
        """``attended``: a person watches the attempts (the console) and can resume a hold, so
        held periods do not count against the limit (up to ``config.max_held_s``); unattended
        (headless) attempts count them, so every attempt ends."""
        self.station = station
        self.policy = policy
        self.devices = list(devices)
        self.observers = list(observers)
        self.config = config
        self.clock = clock or Clock()
        self.operator_name = operator_name
        """Stored as each attempt's operator (a view may change it between attempts)."""
        self.session_task = ""
        """The session's task in the operator's words, kept in each attempt's ``extra`` ('' none)."""
        self.attended = attended
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
        oracle = station if isinstance(station, ExpertOracle) else None
        progress = station if isinstance(station, ReportsProgress) else None
        self.teleop = TeleopInput(self.devices, self.machine, self.watchdogs, self.clock, oracle, progress)
        self.arbiter = Arbiter(config, self.machine, self.clock, self._emit, self.teleop.taken_over)
        self._guards = [o for o in self.observers if isinstance(o, GuardsAttempts)]
        self._events: list[Event] = []
        self._step = 0
        self._counted = 0
        """Periods of this attempt that count against its limit (held ones do not)."""
        self._held = 0
        self._max_held = 0
        self.max_steps = 0
        """The attempt's step limit (held periods not counted), from the configuration or the task."""
        self._hold_still = isinstance(station, HoldsStill)
        self._action_dim = 0
        self._running = False
        self._running_lock = threading.Lock()
        self.last_timer: CycleTimer | None = None
        """The pacing of the latest attempt (period errors, sections), for benchmarks and status."""

    def request(self, request: Request, reason: str = "") -> None:
        """Ask for a transition from any thread; the loop applies it at its next period."""
        self.machine.request(request, self.clock.now(), reason)

    @property
    def running(self) -> bool:
        """An attempt is running (from its reset to its end)."""
        return self._running

    def operator_request(self, request: Request, reason: str = "") -> tuple[str, list[Transition]]:
        """A request from a view (any thread): during an attempt it is applied at the next period;
        between attempts an e-stop latches and a reset leaves it at once (the transitions applied
        are returned), and anything else is refused (:data:`NOT_RUNNING`), never kept for the
        next attempt. Returns (refusal or '', transitions applied now)."""
        with self._running_lock:
            if self._running:
                self.machine.request(request, self.clock.now(), reason)
                return "", []
            if request not in (Request.ESTOP, Request.RESET):
                return NOT_RUNNING, []
            if request is Request.RESET and self.machine.mode is not Mode.ESTOP:
                return "the e-stop is not latched", []
            now = self.clock.now()
            self.machine.request(request, now, reason)
            return "", self.machine.consume(now)

    def clock_figures(self) -> tuple[float, float, float]:
        """(counted s, limit s, held s) of the running or latest attempt, from its periods."""
        period = 1.0 / self.config.rate_hz
        return self._counted * period, self.max_steps * period, self._held * period

    def start_refusal(self) -> str:
        """'' when an attempt may start, else why not (a latched e-stop, an observer's refusal,
        e.g. too little disk)."""
        if self.machine.mode is Mode.ESTOP:
            return "the e-stop is latched: reset it before starting an attempt"
        plan = self.attempt_plan()
        self.max_steps = plan.max_steps
        return next((r for r in (g.start_refusal(plan) for g in self._guards) if r), "")

    def attempt_plan(self) -> AttemptPlan:
        """What the next attempt may need at most (its step limit from the configuration or the task)."""
        cfg, info = self.config, self.station.info
        steps = cfg.attempt_steps(info.time_limit_s)
        return AttemptPlan(cfg.rate_hz, steps, info.state_dim, info.action_dim, info.cameras)

    def run_episode(self, seed: int | None = None, episode_id: str | None = None) -> EpisodeResult:
        """Run one attempt. Raises :class:`AttemptRefused`, before anything moves, when an observer
        refuses to let it start."""
        cfg = self.config
        with self._running_lock:
            refusal = self.start_refusal()
            if refusal:
                raise AttemptRefused(refusal)
            self._running = True
        try:
            episode_id = episode_id or uuid.uuid4().hex[:12]
            obs, limits, timer = self._begin(seed, episode_id)
            while True:
                obs, halt = self._period(obs, limits, timer)
                self._step += 1
                if (
                    halt
                    or (cfg.end_on_success and obs.success)
                    or self._counted >= self.max_steps
                    or self.control.stop_requested
                ):
                    break
                if cfg.paced:
                    timer.wait()
            return self._end(episode_id, obs, halt, timer)
        finally:
            with self._running_lock:
                self._running = False

    def close(self) -> None:
        """Release what the loop itself started (the policy prefetch thread). The station, policy
        and devices belong to whoever built the loop."""
        if self.feed is not None:
            self.feed.close()

    # -- the attempt ----------------------------------------------------------------------------
    def _begin(self, seed: int | None, episode_id: str) -> tuple[Observation, ActionLimits, CycleTimer]:
        """Reset everything for a new attempt, reset the station and tell the observers."""
        cfg, info = self.config, self.station.info
        self.machine.reset(Mode.AUTONOMOUS if self.policy is not None else Mode.HOLD)
        self.teleop.begin_attempt()
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
            extra={
                **self._clock_extra(),
                **({"session_task": self.session_task} if self.session_task else {}),
            },
        )
        for o in self.observers:
            o.on_episode_start(start)
        self._events = []
        self._step = 0
        self._counted = 0
        self._held = 0
        self._max_held = round(cfg.max_held_s * cfg.rate_hz) if self.attended else 0
        self._action_dim = info.action_dim
        if self.feed is not None:
            self.feed.begin()
        self.arbiter.begin(info.action_dim)
        self.watchdogs.begin(self.clock.now())
        self._emit(Event(EventKind.START, 0, obs.t, f"mode {self.machine.mode}"))
        timer.start()
        return obs, limits, timer

    def _period(self, obs: Observation, limits: ActionLimits, timer: CycleTimer) -> tuple[Observation, str]:
        """One period (the module's docstring): returns the next observation and, if the attempt
        must stop now, why."""
        step, arbiter = self._step, self.arbiter
        with timer.section("infer"):
            proposed, policy_action, extras = self._propose(obs)
        with timer.section("observe"):
            commands = self.teleop.read(obs, proposed)
            arbiter.consume(step)
        mode = self.machine.mode
        with timer.section("arbitrate"):
            wanted = arbiter.choose(mode, policy_action, commands, step)
            checked = arbiter.limit(mode, wanted, obs.ee_target, limits, step)
            if checked.refused:
                mode = self.machine.mode
            action = checked.action
        with timer.section("act"):
            halt = self._halt_reason()
            if halt:  # hold the robot now; the attempt ends after this period
                arbiter.hold_now(halt, step)
                mode = self.machine.mode
                action = arbiter.hold_action()
            held = mode in HELD_MODES
            t_act = self.clock.now()
            if held and self._hold_still:
                next_obs = cast(HoldsStill, self.station).hold()
            else:
                next_obs = self.station.act(action)
            slow = self.watchdogs.station(self.clock.now() - t_act)
        if held and self._held < self._max_held:
            self._held += 1
        else:  # driving, or held past max_held_s (an unattended hold still ends the attempt)
            self._counted += 1
        if slow and self.machine.mode is not Mode.ESTOP:
            self.machine.request(Request.HOLD, self.clock.now(), slow)
        with timer.section("record"):
            times = obs.station_times
            record = StepRecord(
                index=step,
                t=obs.t,
                state=obs.state,
                action=action,
                proposed_action=proposed,
                control_source=SOURCE[mode],
                images=obs.images,
                image_times=obs.image_times,
                success=next_obs.success,
                # How late this period started (honest time: overruns stay in the data).
                period_error=timer.last_period_error if step > 0 else 0.0,
                extras=extras,
                station_t=times.t if times else None,
                station_image_times=times.image_times if times else {},
                clock=times.estimate if times else None,
                rendered_earlier=obs.rendered_earlier,
            )
            for o in self.observers:
                o.on_step(record)
        arbiter.executed(obs, next_obs, action)
        return next_obs, halt

    def _end(self, episode_id: str, obs: Observation, halt: str, timer: CycleTimer) -> EpisodeResult:
        """Wait for the policy, tell the observers how the attempt ended, and say so."""
        # Between attempts the policy client is its owner's again (who may close it): wait for a
        # request still in flight, at most twice the policy watchdog's limit.
        drain_s = 2.0 * self.config.safety.policy_timeout_ms / 1000.0
        if self.feed is not None and not self.feed.end(drain_s):
            log.warning("a policy request is still unanswered %.1f s after the attempt ended", drain_s)
        control = self.control
        outcome, discard, note = control.outcome, control.discard, control.note
        end_reason = _end_reason(control, halt, bool(obs.success) and self.config.end_on_success)
        control.clear()
        if halt:
            log.error("attempt %s stopped, robot held: %s", episode_id, halt)
        self._emit(Event(EventKind.END, self._step, self.clock.now(), halt or outcome or end_reason))
        timing = timer.summary()
        timing["held_s"] = self._held / self.config.rate_hz
        end = EpisodeEnd(
            time.time(), obs.success, outcome, discard, timing, reason=halt, end_reason=end_reason, note=note
        )
        for o in self.observers:
            o.on_episode_end(end)
        events = list(self._events)
        success = bool(obs.success)
        return EpisodeResult(episode_id, self._step, success, outcome, discard, events, timing, halt)

    # -- helpers --------------------------------------------------------------------------------
    def _propose(self, obs: Observation) -> tuple[np.ndarray, np.ndarray | None, dict[str, np.ndarray]]:
        """(raw proposal to record, spliced action for the policy to execute or None, the extra
        outputs of a chunk that arrived this period)."""
        action_dim = self._action_dim
        if self.feed is None:
            return np.full(action_dim, np.nan, dtype=np.float32), None, {}
        got = self.feed.next(obs.state, self._step, action_dim, self.machine.mode in POLICY_MODES)
        if got.hold:
            self.machine.request(Request.HOLD, self.clock.now(), got.hold)
        return got.proposed, got.action, got.extras

    def _clock_extra(self) -> dict[str, Any]:
        """The station clock's estimate as the attempt starts, for a station with a clock of its own."""
        station = self.station
        estimate = station.clock_estimate() if isinstance(station, SyncsClock) else None
        return {"station_clock_start": estimate.as_dict()} if estimate is not None else {}

    def _halt_reason(self) -> str:
        return next((r for r in (g.halt_reason() for g in self._guards) if r), "")

    def _emit(self, event: Event) -> None:
        self._events.append(event)
        for o in self.observers:
            o.on_event(event)


def _end_reason(control: EpisodeControl, halt: str, succeeded: bool) -> str:
    """Why the attempt ended (:data:`~takeover.storage.schema.END_REASONS`)."""
    if halt:
        return "halted"
    if control.stop_requested:
        return control.end_reason or ("discarded" if control.discard else "operator")
    return "success" if succeeded else "limit"
