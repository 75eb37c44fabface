"""The takeover state machine.

Device threads and views only *request* transitions (thread-safe); the control loop *consumes*
them once per period, so every change of control happens at a step boundary that the loop
knows, and every consumed transition is recorded as an event. A request that is not allowed
from the current mode is rejected and counted, never raised.

Modes and transitions (the table :data:`TRANSITIONS` is the whole behaviour)::

    AUTONOMOUS --takeover--> HUMAN --handback--> RAMP --ramp_end--> AUTONOMOUS
         |                     |                   |
         +-------hold----------+-------hold--------+------> HOLD --resume--> (held mode; RAMP
                                                             |                 when the policy
                                                             |                 was driving)
    any mode --estop--> ESTOP (latched) --reset--> HOLD

RAMP is the hand-back window: the policy's actions are blended in over a few periods; the
control loop asks for ``ramp_end`` when the window is over. With ``ramp=False`` a hand-back (or
resume) goes straight to AUTONOMOUS. HOLD is also the operator's pause. ESTOP is left only by an
explicit ``reset``, and then only to HOLD: somebody must decide who drives next.
"""

from __future__ import annotations

import enum
import threading
from collections import deque
from dataclasses import dataclass


class Mode(enum.StrEnum):
    AUTONOMOUS = "AUTONOMOUS"
    HUMAN = "HUMAN"
    RAMP = "RAMP"
    """The policy is being blended in after a hand-back."""
    HOLD = "HOLD"
    ESTOP = "ESTOP"


class Request(enum.StrEnum):
    TAKEOVER = "takeover"
    HANDBACK = "handback"
    HOLD = "hold"
    RESUME = "resume"
    ESTOP = "estop"
    RESET = "reset"
    """Leave a latched ESTOP (to HOLD)."""
    RAMP_END = "ramp_end"
    """The hand-back window is over (asked by the control loop itself)."""


RESUME_TO_HELD = None
"""Marks a transition whose target is the mode that was held (RESUME)."""

# (from mode, request) -> to mode; RESUME_TO_HELD = back to the held mode.
TRANSITIONS: dict[tuple[Mode, Request], Mode | None] = {
    (Mode.AUTONOMOUS, Request.TAKEOVER): Mode.HUMAN,
    (Mode.AUTONOMOUS, Request.HOLD): Mode.HOLD,
    (Mode.AUTONOMOUS, Request.ESTOP): Mode.ESTOP,
    (Mode.HUMAN, Request.HANDBACK): Mode.RAMP,
    (Mode.HUMAN, Request.HOLD): Mode.HOLD,
    (Mode.HUMAN, Request.ESTOP): Mode.ESTOP,
    (Mode.RAMP, Request.RAMP_END): Mode.AUTONOMOUS,
    (Mode.RAMP, Request.TAKEOVER): Mode.HUMAN,
    (Mode.RAMP, Request.HOLD): Mode.HOLD,
    (Mode.RAMP, Request.ESTOP): Mode.ESTOP,
    (Mode.HOLD, Request.TAKEOVER): Mode.HUMAN,
    (Mode.HOLD, Request.HANDBACK): Mode.RAMP,
    (Mode.HOLD, Request.RESUME): RESUME_TO_HELD,
    (Mode.HOLD, Request.ESTOP): Mode.ESTOP,
    (Mode.ESTOP, Request.RESET): Mode.HOLD,
}


@dataclass(frozen=True)
class Transition:
    request: Request
    source: Mode
    target: Mode
    t: float
    """Time the control loop consumed the request (its monotonic clock)."""
    requested_at: float
    reason: str


@dataclass(frozen=True)
class _Pending:
    request: Request
    t: float
    reason: str


class TakeoverStateMachine:
    def __init__(self, initial: Mode = Mode.AUTONOMOUS, *, ramp: bool = True) -> None:
        self._mode = initial
        self._ramp = ramp
        self._held_from = Mode.AUTONOMOUS
        self._pending: deque[_Pending] = deque()
        self._lock = threading.Lock()
        self.rejected = 0

    @property
    def mode(self) -> Mode:
        return self._mode

    def request(self, request: Request, t: float, reason: str = "") -> None:
        """Ask for a transition (any thread). It takes effect at the loop's next :meth:`consume`."""
        with self._lock:
            self._pending.append(_Pending(request, t, reason))

    def consume(self, now: float) -> list[Transition]:
        """Apply pending requests in order (control loop only); return the ones that changed the mode."""
        with self._lock:
            pending = list(self._pending)
            self._pending.clear()
        applied: list[Transition] = []
        for p in pending:
            target = self.target_of(p.request)
            if target is None:
                self.rejected += 1
                continue
            if target is Mode.HOLD and self._mode is not Mode.ESTOP:
                self._held_from = self._mode
            if self._mode is Mode.ESTOP:
                self._held_from = Mode.HOLD  # after a reset, resume goes nowhere by itself
            applied.append(Transition(p.request, self._mode, target, now, p.t, p.reason))
            self._mode = target
        return applied

    def target_of(self, request: Request) -> Mode | None:
        """The mode ``request`` would lead to from the current mode, or None if it is not allowed."""
        key = (self._mode, request)
        if key not in TRANSITIONS:
            return None
        target = TRANSITIONS[key]
        if target is RESUME_TO_HELD:
            if self._held_from is Mode.HOLD:
                return None
            target = Mode.RAMP if self._held_from in (Mode.AUTONOMOUS, Mode.RAMP) else self._held_from
        if target is Mode.RAMP and not self._ramp:
            target = Mode.AUTONOMOUS
        return target

    def reset(self, mode: Mode = Mode.AUTONOMOUS) -> None:
        """Start a new attempt: drop pending requests and set the mode (control loop only).

        A latched ESTOP survives the start of a new attempt; only a RESET request leaves it. Pending
        ESTOP and RESET requests are kept, so they are consumed (and recorded) in the new attempt.
        """
        with self._lock:
            kept = [p for p in self._pending if p.request in (Request.ESTOP, Request.RESET)]
            self._pending.clear()
            self._pending.extend(kept)
        if self._mode is not Mode.ESTOP:
            self._mode = mode
        self._held_from = Mode.AUTONOMOUS
