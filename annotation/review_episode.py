"""One episode as the review screen shows it, without Qt: control-source segments, events, which
camera frame belongs to a step, and the plotted series on the step axis.

A camera shows, at step ``s``, the latest frame it captured at or before ``s`` (as ``pull`` does),
and nothing before its first frame. Frames are read from the episode's frame blob one at a time
(or from the episode file, for episodes that keep them inline); nothing is decoded here
(:mod:`takeover.annotation.review_frames` decodes and caches).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from takeover.storage.catalog import EpisodeRecord
from takeover.storage.schema import ControlSource, Episode, Event

if TYPE_CHECKING:
    from takeover.storage.store import Store

SOURCE_NAMES: dict[ControlSource, str] = {
    ControlSource.POLICY: "policy",
    ControlSource.HUMAN: "human",
    ControlSource.HOLD: "hold",
    ControlSource.RAMP: "ramp",
}
MAX_CURVES = 8
"""A plotted series shows at most this many components (a world-model prediction may have more)."""


@dataclass(frozen=True)
class Segment:
    """Steps ``[start, stop)`` driven by one control source."""

    start: int
    stop: int
    source: ControlSource


def segments(control_source: np.ndarray) -> list[Segment]:
    """The runs of equal control source, in step order (an unknown code reads as HOLD)."""
    cs = np.asarray(control_source).astype(np.int64)
    if cs.shape[0] == 0:
        return []
    cuts = np.flatnonzero(cs[1:] != cs[:-1]) + 1
    starts = [0, *cuts.tolist()]
    stops = [*cuts.tolist(), int(cs.shape[0])]
    known = {int(c) for c in ControlSource}
    return [
        Segment(a, b, ControlSource(int(cs[a])) if int(cs[a]) in known else ControlSource.HOLD)
        for a, b in zip(starts, stops, strict=True)
    ]


class CameraFrames:
    """One camera's frames, found by step."""

    def __init__(
        self, name: str, frames: Sequence[bytes], steps: np.ndarray, height: int, width: int
    ) -> None:
        self.name = name
        self.frames = frames
        """JPEG bytes of each frame, in recorded order (a list, or a lazily read frame blob)."""
        self.steps = np.asarray(steps, dtype=np.int64)
        """(F,) step at which each frame was captured."""
        self.height = height
        self.width = width
        # Ordered by step, then recorded order, so the latest frame at or before a step is found
        # by bisection (the stable sort keeps the later of two frames of one step last).
        self._order = np.argsort(self.steps, kind="stable")
        self._sorted = self.steps[self._order]

    def __len__(self) -> int:
        return int(self.steps.shape[0])

    def index_at(self, step: int) -> int | None:
        """The number of the frame shown at ``step``: the latest captured at or before it (None
        before the first)."""
        pos = int(np.searchsorted(self._sorted, step, side="right")) - 1
        return None if pos < 0 else int(self._order[pos])

    def first_step(self) -> int | None:
        """The step of the camera's first frame (None: it has none)."""
        return int(self._sorted[0]) if len(self) else None


@dataclass(frozen=True, eq=False)
class Series:
    """A plotted stream on the step axis: ``values[i]`` at (fractional) step ``x[i]``."""

    name: str
    x: np.ndarray
    """(N,) float64 step positions."""
    values: np.ndarray
    """(N, K) float64, K <= :data:`MAX_CURVES` (NaN: no value)."""
    components: tuple[str, ...]
    """A name per column of ``values``."""
    total: int = 0
    """How many components the stream has (more than shown when above :data:`MAX_CURVES`)."""


def _columns(values: np.ndarray) -> tuple[np.ndarray, int]:
    """(N, ...) -> (N, K) float64 with at most MAX_CURVES columns, and how many there were."""
    flat = np.asarray(values, dtype=np.float64).reshape(values.shape[0], -1)
    return flat[:, :MAX_CURVES], int(flat.shape[1])


@dataclass(frozen=True, eq=False)
class ReviewEpisode:
    """An episode loaded for review: its record, its data and what the screen derives from it."""

    record: EpisodeRecord
    episode: Episode
    cameras: dict[str, CameraFrames]
    """By camera name, sorted."""
    segments: tuple[Segment, ...]

    @property
    def episode_id(self) -> str:
        return self.record.episode_id

    @property
    def num_steps(self) -> int:
        return self.episode.num_steps

    @property
    def last_step(self) -> int:
        return max(0, self.num_steps - 1)

    @property
    def events(self) -> list[Event]:
        return self.episode.events

    @property
    def steps_per_second(self) -> int:
        """Steps in one second of the recording (at least 1): the size of a Shift+arrow jump."""
        return max(1, round(self.record.rate_hz))

    def clamp(self, step: int) -> int:
        return min(max(0, int(step)), self.last_step)

    def time_of(self, step: int) -> float:
        """Seconds from the first step to ``step`` on the episode's own clock."""
        ts = self.episode.timestamps
        if ts.shape[0] == 0:
            return 0.0
        return float(ts[self.clamp(step)] - ts[0])

    def step_at_time(self, seconds: float) -> int:
        """The last step at or before ``seconds`` from the first step."""
        ts = self.episode.timestamps
        if ts.shape[0] == 0:
            return 0
        return self.clamp(int(np.searchsorted(ts - ts[0], seconds + 1e-9, side="right")) - 1)

    def frame_indices(self, step: int) -> dict[str, int | None]:
        """Camera -> the number of the frame it shows at ``step`` (None before its first)."""
        return {name: cam.index_at(step) for name, cam in self.cameras.items()}

    def action_series(self) -> tuple[Series, Series]:
        """The executed and the proposed action (NaN where the policy proposed nothing)."""
        x = np.arange(self.num_steps, dtype=np.float64)
        out = []
        for name, values in (("executed", self.episode.action), ("proposed", self.episode.proposed_action)):
            cols, total = _columns(values)
            out.append(Series(name, x, cols, tuple(f"a{i}" for i in range(cols.shape[1])), total))
        return out[0], out[1]

    def state_series(self) -> Series:
        cols, total = _columns(self.episode.state)
        x = np.arange(self.num_steps, dtype=np.float64)
        return Series("state", x, cols, tuple(f"s{i}" for i in range(cols.shape[1])), total)

    def stream_series(self) -> list[Series]:
        """Each recorded stream (policy outputs such as value estimates, the loop's timing), its
        samples placed on the step axis by their timestamps; sorted by name."""
        ts = np.asarray(self.episode.timestamps, dtype=np.float64)
        out = []
        for name in sorted(self.episode.streams):
            stream = self.episode.streams[name]
            if stream.timestamps.shape[0] == 0 or ts.shape[0] == 0:
                continue
            steps = np.arange(ts.shape[0], dtype=np.float64)
            x = np.interp(np.asarray(stream.timestamps, dtype=np.float64), ts, steps)
            cols, total = _columns(stream.values)
            names = tuple(f"{name}[{i}]" if total > 1 else name for i in range(cols.shape[1]))
            out.append(Series(name, x, cols, names, total))
        return out


def review_episode(record: EpisodeRecord, episode: Episode) -> ReviewEpisode:
    """The review view of ``episode`` (read from the store for ``record``)."""
    cameras = {
        name: CameraFrames(name, cam.frames, cam.step_index, int(cam.height), int(cam.width))
        for name, cam in sorted(episode.cameras.items())
    }
    return ReviewEpisode(record, episode, cameras, tuple(segments(episode.control_source)))


def load_review_episode(store: Store, episode_id: str) -> ReviewEpisode:
    """Read ``episode_id`` for review: its low-dimensional data now, camera frames when shown."""
    record = store.get_episode(episode_id)
    return review_episode(record, store.read_episode(episode_id))
