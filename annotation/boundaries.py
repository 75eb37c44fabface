"""Intervention boundaries: the steps at which control changes hands.

The per-step control source is the record of who drove; a boundary is a step whose control source
differs from the previous step's. Events (consumed transitions of the takeover state machine)
supply the time and the reason when one was recorded at that step.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from takeover.storage.schema import ControlSource, Episode, Event, EventKind


class BoundaryKind(enum.StrEnum):
    TAKEOVER = "takeover"
    """POLICY or HOLD -> HUMAN."""
    HANDBACK = "handback"
    """HUMAN -> POLICY, or HUMAN -> RAMP (the hand-back window where the policy is blended in)."""
    HOLD = "hold"
    """POLICY or HUMAN -> HOLD."""
    RESUME = "resume"
    """HOLD -> POLICY."""
    RAMP_END = "ramp_end"
    """RAMP -> POLICY: the hand-back window is over."""


INTERVENTION_KINDS = (BoundaryKind.TAKEOVER, BoundaryKind.HANDBACK)
"""The boundaries where a human and the policy hand control to each other."""

_EVENT_FOR = {
    BoundaryKind.TAKEOVER: EventKind.TAKEOVER,
    BoundaryKind.HANDBACK: EventKind.HANDBACK,
    BoundaryKind.HOLD: EventKind.HOLD,
    BoundaryKind.RESUME: EventKind.RESUME,
    BoundaryKind.RAMP_END: EventKind.RAMP_END,
}


@dataclass(frozen=True)
class Boundary:
    kind: BoundaryKind
    step: int
    """First step recorded under the new control source (never 0)."""
    time: float
    """When the transition was consumed (the event's time), else the step's timestamp."""
    before: ControlSource
    after: ControlSource
    reason: str = ""


def boundary_kind(before: ControlSource, after: ControlSource) -> BoundaryKind:
    if after is ControlSource.HUMAN:
        return BoundaryKind.TAKEOVER
    if after is ControlSource.HOLD:
        return BoundaryKind.HOLD
    if before is ControlSource.HUMAN:
        return BoundaryKind.HANDBACK
    if before is ControlSource.RAMP:
        return BoundaryKind.RAMP_END
    return BoundaryKind.RESUME


def change_steps(control_source: np.ndarray) -> np.ndarray:
    """Steps (int64, ascending) whose control source differs from the previous step's."""
    cs = np.asarray(control_source).astype(np.int64)
    if cs.shape[0] < 2:
        return np.zeros(0, dtype=np.int64)
    return (np.flatnonzero(cs[1:] != cs[:-1]) + 1).astype(np.int64)


def find_boundaries(episode: Episode, kinds: tuple[BoundaryKind, ...] | None = None) -> list[Boundary]:
    """Every control change of ``episode`` in step order (only ``kinds`` if given)."""
    cs = np.asarray(episode.control_source)
    by_step: dict[tuple[int, EventKind], Event] = {}
    for ev in episode.events:
        by_step.setdefault((ev.step, EventKind(ev.kind)), ev)
    out: list[Boundary] = []
    for step in change_steps(cs).tolist():
        before, after = ControlSource(int(cs[step - 1])), ControlSource(int(cs[step]))
        kind = boundary_kind(before, after)
        if kinds is not None and kind not in kinds:
            continue
        found = by_step.get((step, _EVENT_FOR[kind]))
        time = found.t if found is not None else float(episode.timestamps[step])
        reason = found.reason if found is not None else ""
        out.append(Boundary(kind, step, float(time), before, after, reason))
    return out


def segment_end(control_source: np.ndarray, step: int) -> int:
    """One past the last step of the control segment that contains ``step``."""
    cs = np.asarray(control_source)
    later = np.flatnonzero(cs[step:] != cs[step])
    return int(step + later[0]) if later.size else int(cs.shape[0])
