"""The episode schema: what one recorded attempt is, independent of how it is stored.

The recorder builds an :class:`Episode`; storage writes it once into an immutable,
content-addressed file and catalogs its metadata; the pull side reads it back.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, overload

import numpy as np

SCHEMA_VERSION = 2
"""1: frames inline in the episode file. 2 adds frames kept in a separate blob, and timed streams."""


class ControlSource(enum.IntEnum):
    """Who produced the executed action at a step."""

    POLICY = 0
    HUMAN = 1
    HOLD = 2
    RAMP = 3
    """Hand-back window: the policy's action blended in over the human's last one."""


class EventKind(enum.StrEnum):
    """Things that happen during an attempt, each stamped with time and step index."""

    START = "start"
    TAKEOVER = "takeover"
    HANDBACK = "handback"
    HOLD = "hold"
    RESUME = "resume"
    ESTOP = "estop"
    RESET = "reset"
    """A latched e-stop was reset (the robot is then held)."""
    RAMP_END = "ramp_end"
    """The hand-back window is over: the policy drives alone from this step."""
    LIMIT = "limit"
    """A safety limit started to clamp the commanded action (workspace box, largest step)."""
    CAMERA_DOWN = "camera_down"
    """A free-running camera stopped delivering frames (its reason: ``<camera>: <why>``); its frames
    are missing from this step until its ``camera_up`` event."""
    CAMERA_UP = "camera_up"
    """A camera is back (reason ``<camera>: back after ...``); its first new frame is at this step."""
    END = "end"


@dataclass(frozen=True)
class Event:
    kind: EventKind
    step: int
    """Index of the first step recorded under the new state."""
    t: float
    """Monotonic time (s) at which the control loop consumed the transition."""
    reason: str = ""


CAMERA_KINDS = (EventKind.CAMERA_DOWN, EventKind.CAMERA_UP)
_CAMERA_SEP = ": "


def camera_event(kind: EventKind, step: int, t: float, camera: str, detail: str) -> Event:
    """A camera event; its reason names the camera first (``<camera>: <detail>``)."""
    if kind not in CAMERA_KINDS:
        raise ValueError(f"{kind} is not a camera event")
    if _CAMERA_SEP in camera:
        raise ValueError(f"camera name {camera!r} must not contain {_CAMERA_SEP!r}")
    return Event(kind, step, t, f"{camera}{_CAMERA_SEP}{detail}")


def event_camera(event: Event) -> str:
    """The camera a camera event is about."""
    if event.kind not in CAMERA_KINDS:
        raise ValueError(f"a {event.kind} event is not about a camera")
    return event.reason.partition(_CAMERA_SEP)[0]


@dataclass(frozen=True, kw_only=True)
class AttemptInfo:
    """What is known of an attempt when it starts: the one definition of an episode's identity.

    The loop's start message (``recorder.records.EpisodeStart``), the stored metadata
    (:class:`EpisodeMeta`) and the catalog's record (``storage.catalog.EpisodeRecord``) extend it;
    the write-ahead log stores it as a map of these fields (:meth:`from_fields` reads it back).
    """

    episode_id: str
    station: str
    robot: str
    task: str
    operator: str
    policy_id: str
    rate_hz: float
    started_at: float
    """Wall-clock start, seconds since the epoch (for people and sorting)."""
    seed: int | None = None
    """The station's seed for this attempt (None for a station without seeds)."""

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def info_fields(self) -> dict[str, Any]:
        """This attempt's :class:`AttemptInfo` fields by name (for a subclass's constructor)."""
        return {name: getattr(self, name) for name in AttemptInfo.field_names()}


END_REASONS: dict[str, str] = {
    "success": "the station said the task succeeded",
    "limit": "the attempt used its time limit",
    "operator": "the operator ended it (with their verdict, if any)",
    "discarded": "the operator discarded it",
    "interrupted": "it was cut short with nobody to say how it went (the console closed, the "
    "process that started the engine went away, a crash)",
    "halted": "the loop stopped it itself (e.g. a recorder that could not write)",
}
"""Why an attempt ended, as stored in ``end_reason``. Interrupted attempts are left out of a
version committed without an explicit selection."""


@dataclass(frozen=True, kw_only=True)
class AttemptSummary(AttemptInfo):
    """An attempt as it ended: its identity plus how it ended."""

    ended_at: float
    """Wall-clock end, seconds since the epoch."""
    success: bool | None
    """The station's success flag at the end of the attempt (None if the station has none)."""
    outcome: str = ""
    """What the operator said of the attempt: 'success', 'near_success', 'failure' or '' (not said:
    the station's flag is the verdict)."""
    end_reason: str = ""
    """Why the attempt ended (:data:`END_REASONS`; '' in episodes recorded before it was kept)."""
    note: str = ""
    """The operator's note on the attempt, given with their verdict."""

    def summary_fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in AttemptSummary.field_names()}


@dataclass(frozen=True, kw_only=True)
class EpisodeMeta(AttemptSummary):
    """The metadata stored in an episode file."""

    extra: dict[str, Any] = field(default_factory=dict)
    """Everything else the recorder knows (timing, dropped frames, recovery, station clock...)."""

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> EpisodeMeta:
        """From the JSON map of an episode file. Files written before ``seed`` was a field kept it
        in ``extra``."""
        unknown = sorted(set(stored) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"episode metadata has unknown field(s) {unknown}")
        known = dict(stored)
        if "seed" not in known:
            seed = known.get("extra", {}).get("seed")
            known["seed"] = seed if isinstance(seed, int) and not isinstance(seed, bool) else None
        return cls(**known)


class BlobSource(Protocol):
    """Reads blobs by digest and byte range (:class:`takeover.storage.blobs.BlobReader`)."""

    def read_range(self, digest: str, start: int, length: int) -> bytes: ...


@dataclass(frozen=True, eq=False)
class FrameBlob(Sequence[bytes]):
    """JPEG frames kept in a separate blob (a finished camera log, see ``record_log``), read lazily,
    one byte range per frame, from ``source`` (a blob store, or the camera log not yet stored).

    ``digest`` is the sha256 of the whole blob; frame ``i`` is the ``lengths[i]`` bytes at byte
    ``offsets[i]``.
    """

    source: BlobSource
    digest: str
    offsets: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return int(self.offsets.shape[0])

    @overload
    def __getitem__(self, i: int) -> bytes: ...
    @overload
    def __getitem__(self, i: slice) -> list[bytes]: ...
    def __getitem__(self, i: int | slice) -> bytes | list[bytes]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        off, n = int(self.offsets[i]), int(self.lengths[i])
        data = self.source.read_range(self.digest, off, n)
        if len(data) != n:
            raise ValueError(f"frame blob {self.digest} is shorter than its index says")
        return data

    def __iter__(self) -> Iterator[bytes]:
        opener = getattr(self.source, "open", None)
        if opener is None:
            for i in range(len(self)):
                yield self[i]
            return
        with opener(self.digest) as f:  # one open file (and its read-ahead) for every frame
            for off, n in zip(self.offsets.tolist(), self.lengths.tolist(), strict=True):
                f.seek(off)
                yield f.read(n)


@dataclass
class TimedStream:
    """A low-dimensional stream at its own rate: one row of ``values`` per timestamp."""

    timestamps: np.ndarray
    """Monotonic time of each sample (float64, seconds)."""
    values: np.ndarray
    """(N, ...) samples."""


@dataclass
class CameraStream:
    name: str
    frames: Sequence[bytes]
    """JPEG-encoded frames: a list, or a :class:`FrameBlob` stored beside the episode file."""
    timestamps: np.ndarray
    """Monotonic capture time of each frame (float64, seconds)."""
    step_index: np.ndarray
    """Step at which each frame was captured (int64)."""
    height: int
    width: int
    dropped: int = 0


@dataclass
class Episode:
    """One recorded attempt. Arrays share their first dimension, the step index."""

    meta: EpisodeMeta
    timestamps: np.ndarray
    """Monotonic time at which each step's observation was produced (float64, seconds)."""
    state: np.ndarray
    """(T, S) float32 robot/task state."""
    action: np.ndarray
    """(T, A) float32: the action executed at each step."""
    proposed_action: np.ndarray
    """(T, A) float32: the policy's proposal at each step, also while the human drives (NaN if none)."""
    control_source: np.ndarray
    """(T,) uint8 :class:`ControlSource`."""
    events: list[Event]
    cameras: dict[str, CameraStream]
    streams: dict[str, TimedStream] = field(default_factory=dict)
    """Low-dimensional streams with their own rates and timestamps (e.g. the loop's period error)."""

    @property
    def num_steps(self) -> int:
        return int(self.timestamps.shape[0])

    def validate(self) -> None:
        """Raise ValueError if the streams disagree in length or type."""
        n = self.num_steps
        for name in ("state", "action", "proposed_action", "control_source"):
            arr = getattr(self, name)
            if arr.shape[0] != n:
                raise ValueError(
                    f"episode {self.meta.episode_id}: {name} has {arr.shape[0]} rows, expected {n}"
                )
        if self.action.shape != self.proposed_action.shape:
            raise ValueError(
                f"episode {self.meta.episode_id}: action {self.action.shape} and proposed_action "
                f"{self.proposed_action.shape} differ in shape"
            )
        for cam in self.cameras.values():
            if not (len(cam.frames) == cam.timestamps.shape[0] == cam.step_index.shape[0]):
                raise ValueError(
                    f"episode {self.meta.episode_id}: camera {cam.name} streams differ in length"
                )
        for sname, st in self.streams.items():
            if st.timestamps.ndim != 1 or st.values.shape[:1] != st.timestamps.shape:
                raise ValueError(f"episode {self.meta.episode_id}: stream {sname} streams differ in length")
        for ev in self.events:
            if not 0 <= ev.step <= n:
                raise ValueError(
                    f"episode {self.meta.episode_id}: event {ev.kind} at step {ev.step} outside 0..{n}"
                )
