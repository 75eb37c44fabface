"""The result of boundary smoothing: a derived view of one raw episode, and its report.

A :class:`SmoothedEpisode` never copies the raw streams it does not change: it holds which raw
steps and frames are kept, the corrected actions and the shifted timestamps. Together with the
raw episode it builds a complete derived :class:`Episode` (:meth:`SmoothedEpisode.to_episode`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from takeover.annotation.params import SmoothingParams
from takeover.storage.schema import CameraStream, Episode, Event, EventKind

DERIVATION_NAME = "boundary_smoothing"
DERIVATION_VERSION = 1
EXTRA_KEY = DERIVATION_NAME
"""Key in ``EpisodeMeta.extra`` of a derived episode: the derivation, its parameters and how far
its samples were moved in time from the raw recording."""


@dataclass(frozen=True)
class BoundaryChange:
    """What smoothing found and did at one takeover or hand-back."""

    kind: str
    raw_step: int
    """First raw step under the new control source."""
    step: int
    """First step under the new control source in the smoothed episode."""
    time: float
    """Raw time of the boundary."""
    idle_steps: int
    """Idle steps found at the start of the new segment."""
    removed_start: int
    removed_stop: int
    """Raw steps ``[removed_start, removed_stop)`` were removed (empty if equal)."""
    removed_s: float
    """Seconds by which later samples were moved earlier."""
    action_jump: float
    """Largest change of a motion component from the last action before to the first after."""
    blended_steps: tuple[int, ...]
    """Raw steps whose action was replaced by the blend."""
    blend_first_weight: float
    """Weight of the recorded action in the first blended step (0 if none)."""
    position_jump: float
    """Distance (m) between the positions at the last step before and the first after."""
    notes: tuple[str, ...] = ()

    @property
    def removed_steps(self) -> int:
        return self.removed_stop - self.removed_start

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["blended_steps"] = list(self.blended_steps)
        out["notes"] = list(self.notes)
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> BoundaryChange:
        fields = dict(obj)
        fields["blended_steps"] = tuple(int(s) for s in fields["blended_steps"])
        fields["notes"] = tuple(str(n) for n in fields["notes"])
        return cls(**fields)


@dataclass(frozen=True)
class DroppedFrame:
    camera: str
    index: int
    """Raw frame index."""
    step: int
    """Raw step at which it was captured."""
    reason: str
    """'pause' (captured during a removed pause), 'stalled' (same bytes as the frame before) or
    'duplicate' (its time does not advance past the frame before)."""


@dataclass(frozen=True, eq=False)
class CameraSelection:
    index: np.ndarray
    """(F',) int64 raw frame indices kept, in recorded order."""
    timestamps: np.ndarray
    """(F',) float64 shifted capture times."""
    step_index: np.ndarray
    """(F',) int64 steps in the smoothed episode."""


@dataclass(frozen=True, eq=False)
class SmoothedEpisode:
    episode_id: str
    params: SmoothingParams
    num_raw_steps: int
    keep: np.ndarray
    """(T',) int64 raw steps kept, ascending."""
    timestamps: np.ndarray
    """(T',) float64 timestamps after removing pauses."""
    action: np.ndarray
    """(T', A) float32 executed actions with jumps blended."""
    time_shift: np.ndarray
    """(T',) float64 seconds each kept step was moved earlier by this derivation."""
    cameras: dict[str, CameraSelection]
    events: tuple[Event, ...]
    """Events with steps mapped into the smoothed index and times shifted."""
    changes: tuple[BoundaryChange, ...]
    dropped_frames: tuple[DroppedFrame, ...]
    prior_time_shift_s: float = 0.0
    """How far the input itself had already been moved (it was derived by smoothing before)."""

    @property
    def num_steps(self) -> int:
        return int(self.keep.shape[0])

    @property
    def total_time_shift_s(self) -> float:
        """The most any sample is moved from the raw recording (including earlier smoothing)."""
        own = float(self.time_shift.max()) if self.time_shift.size else 0.0
        return self.prior_time_shift_s + own

    @property
    def changed(self) -> bool:
        """False if the derivation is the identity on its input."""
        return bool(
            self.num_steps != self.num_raw_steps
            or any(c.blended_steps for c in self.changes)
            or self.dropped_frames
        )

    def raw_step_of(self, step: int) -> int:
        return int(self.keep[step])

    def derivation_extra(self) -> dict[str, Any]:
        return {
            "name": DERIVATION_NAME,
            "version": DERIVATION_VERSION,
            "params": self.params.to_dict(),
            "time_shift_s": self.total_time_shift_s,
        }

    def to_episode(self, raw: Episode) -> Episode:
        """The derived episode: kept steps and frames of ``raw``, corrected actions, new times.

        Smoothing this episode again with the same parameters changes nothing.
        """
        if raw.meta.episode_id != self.episode_id or raw.num_steps != self.num_raw_steps:
            raise ValueError(
                f"smoothed view of {self.episode_id} ({self.num_raw_steps} steps) does not belong to "
                f"episode {raw.meta.episode_id} ({raw.num_steps} steps)"
            )
        cams: dict[str, CameraStream] = {}
        for name in sorted(self.cameras):
            sel, cam = self.cameras[name], raw.cameras[name]
            cams[name] = CameraStream(
                name=name,
                frames=[cam.frames[int(i)] for i in sel.index],
                timestamps=sel.timestamps.copy(),
                step_index=sel.step_index.copy(),
                height=cam.height,
                width=cam.width,
                dropped=cam.dropped,
            )
        extra = dict(raw.meta.extra)
        extra[EXTRA_KEY] = self.derivation_extra()
        return Episode(
            meta=replace(raw.meta, extra=extra),
            timestamps=self.timestamps.copy(),
            state=np.asarray(raw.state)[self.keep].copy(),
            action=self.action.copy(),
            proposed_action=np.asarray(raw.proposed_action)[self.keep].copy(),
            control_source=np.asarray(raw.control_source)[self.keep].copy(),
            events=list(self.events),
            cameras=cams,
        )


def prior_time_shift(extra: dict[str, Any]) -> float:
    """How far an episode's samples were already moved by earlier smoothing (0 for raw data)."""
    record = extra.get(EXTRA_KEY)
    if not isinstance(record, dict):
        return 0.0
    value = record.get("time_shift_s", 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0.0
    return max(0.0, float(value))


def events_to_json(events: tuple[Event, ...]) -> list[dict[str, Any]]:
    return [{"kind": str(e.kind.value), "step": e.step, "t": e.t, "reason": e.reason} for e in events]


def events_from_json(items: list[dict[str, Any]]) -> tuple[Event, ...]:
    return tuple(Event(EventKind(i["kind"]), int(i["step"]), float(i["t"]), str(i["reason"])) for i in items)


def frozen(arr: np.ndarray) -> np.ndarray:
    """``arr`` marked read-only (derived arrays are values, not buffers to edit)."""
    arr.flags.writeable = False
    return arr
