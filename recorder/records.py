"""What the control loop tells its observers (the recorder, the status publisher, tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from takeover.storage.schema import AttemptInfo, ControlSource, Event


@dataclass(frozen=True, kw_only=True)
class EpisodeStart(AttemptInfo):
    """An attempt starts (its identity, :class:`~takeover.storage.schema.AttemptInfo`)."""

    extra: dict[str, Any] = field(default_factory=dict)
    """Anything else the loop knows at the start, kept in the episode's ``extra``."""


class ClockEstimate(Protocol):
    """An estimate of a station clock's offset from the engine's, as the recorder keeps it
    (``takeover.app.station.clock.OffsetEstimate``): ``station = engine + offset_s`` near ``at``."""

    @property
    def offset_s(self) -> float: ...

    @property
    def uncertainty_s(self) -> float: ...

    def as_dict(self) -> dict[str, float | int]:
        """The estimate as plain numbers (for the episode's metadata)."""
        ...


@dataclass(frozen=True)
class StepRecord:
    index: int
    t: float
    """Monotonic time at which the observation this step acted on was produced, on the engine's
    clock (rebased from a station's own clock when it has one: see ``station_t``)."""
    state: np.ndarray
    action: np.ndarray
    proposed_action: np.ndarray
    control_source: ControlSource
    images: dict[str, np.ndarray]
    image_times: dict[str, float]
    success: bool
    period_error: float | None = None
    """How late (s) the loop started this step's period relative to its absolute deadline, as the
    loop's pacer measured it (positive: late; an overrun when larger than a period). Optional: a
    loop that does not say leaves None and the recorder stores NaN."""
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    """Extra policy outputs (e.g. a value estimate) that arrived with a new chunk at this step;
    stored as timed streams named ``policy.<name>``."""
    station_t: float | None = None
    """The observation's time as the station's own clock read it, when ``t`` was rebased from it
    (None: the station shares the engine's clock)."""
    station_image_times: dict[str, float] = field(default_factory=dict)
    """Camera name -> capture time on the station's own clock (``image_times`` are rebased)."""
    clock: ClockEstimate | None = None
    """The estimate ``t`` and ``image_times`` were rebased with (with ``station_t``)."""
    rendered_earlier: frozenset[str] = frozenset()
    """Cameras whose image shows an earlier step's state (rendered off the loop) and is stamped
    with that step's ``t``: such a frame is placed by its time, at that step."""


@dataclass(frozen=True)
class EpisodeEnd:
    ended_at: float
    """Wall-clock seconds since the epoch."""
    success: bool | None
    outcome: str = ""
    discard: bool = False
    timing: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    """Why the loop ended the attempt itself ('' when it ended as asked or as configured), e.g. a
    recorder that could not write (see :class:`GuardsAttempts`)."""
    end_reason: str = ""
    """Why it ended (:data:`~takeover.storage.schema.END_REASONS`)."""
    note: str = ""
    """The operator's note with their verdict."""


class LoopObserver(Protocol):
    def on_episode_start(self, start: EpisodeStart) -> None: ...

    def on_step(self, step: StepRecord) -> None: ...

    def on_event(self, event: Event) -> None: ...

    def on_episode_end(self, end: EpisodeEnd) -> None: ...


@dataclass(frozen=True)
class AttemptPlan:
    """What an attempt may need at most, told to observers before it starts."""

    rate_hz: float
    max_steps: int
    state_dim: int
    action_dim: int
    cameras: tuple[str, ...]
    """The station's own cameras (one frame each per step)."""


@runtime_checkable
class GuardsAttempts(Protocol):
    """Optional capability of a loop observer: it can refuse to let an attempt start, or go on.

    The loop asks :meth:`start_refusal` before it resets the station and :meth:`halt_reason`
    every period before it commands the robot; a non-empty answer holds the robot and ends the
    attempt with that reason (a recorder that cannot write, a disk that cannot hold the attempt).
    """

    def start_refusal(self, plan: AttemptPlan) -> str:
        """'' when an attempt like ``plan`` may start, else why not (one line, what to do)."""
        ...

    def halt_reason(self) -> str:
        """'' while the running attempt may go on, else why it must stop now."""
        ...
