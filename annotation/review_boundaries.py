"""The hand-overs of one episode, raw beside smoothed, for the review screen's boundaries view.

For every takeover and hand-back (:func:`~takeover.annotation.boundaries.find_boundaries`), the
executed action around the boundary as recorded and as boundary smoothing derives it
(:mod:`takeover.annotation.smoothing`), on one time axis (seconds from the boundary, the smoothed
samples at their shifted times). The smoothing is the stored derivation with the given parameters
when there is one, else computed here and not stored (viewing changes nothing).

Boundary edits (a takeover or hand-back moved, a pre-intervention window marked; made with
``takeover annotate boundary``, :mod:`takeover.annotation.boundary_edits`) are shown as they count
now: where the boundary counts from and the window, beside the recorded step. This view does not
make edits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from takeover.annotation.boundaries import INTERVENTION_KINDS, Boundary, find_boundaries
from takeover.annotation.boundary_edits import effective_boundaries
from takeover.annotation.derivations import load_smoothed
from takeover.annotation.params import SmoothingParams
from takeover.annotation.smoothed import BoundaryChange, SmoothedEpisode
from takeover.annotation.smoothing import smooth_episode
from takeover.storage.boundary_edits import BoundaryEdit
from takeover.storage.errors import StorageError
from takeover.storage.schema import Episode

if TYPE_CHECKING:
    from takeover.storage.store import Store

BEFORE_S = 1.0
AFTER_S = 2.0
"""The view shows this long before and after each boundary."""


@dataclass(frozen=True, eq=False)
class HandOver:
    """One takeover or hand-back, raw and smoothed."""

    boundary: Boundary
    change: BoundaryChange | None
    """What smoothing found and did there (None: smoothing is not available)."""
    raw_t: np.ndarray
    """(N,) seconds from the boundary of the raw steps shown."""
    raw_action: np.ndarray
    """(N, K) executed action, motion components."""
    smooth_t: np.ndarray
    """(M,) seconds from the raw boundary of the smoothed steps shown (at their shifted times)."""
    smooth_action: np.ndarray
    """(M, K) smoothed executed action."""
    components: tuple[str, ...]
    blended: tuple[float, float] | None = None
    """Seconds from the boundary spanned by the steps whose action smoothing blended."""
    removed: tuple[float, float] | None = None
    """Seconds from the boundary spanned by the pause smoothing removed."""
    edit: BoundaryEdit | None = None
    """The edit of this boundary that counts (None: as recorded)."""
    moved_to: float | None = None
    """Seconds from the recorded boundary to where the edit moved it (None: not moved)."""
    pre_window: tuple[float, float] | None = None
    """Seconds from the recorded boundary spanned by the marked pre-intervention window."""

    def summary(self) -> str:
        """What smoothing did here, and the boundary's edit, in one line."""
        c = self.change
        parts = [] if c is None else self._smoothing()
        e = self.edit
        if e is not None:
            edited = f"moved to step {e.step}" if e.step != e.recorded_step else "not moved"
            if e.pre_window_start is not None:
                edited += f", pre-intervention window from step {e.pre_window_start}"
            parts.append(f"edit {e.id} by {e.annotator}: {edited}")
        return "; ".join(parts) if parts else "no smoothing"

    def _smoothing(self) -> list[str]:
        c = self.change
        assert c is not None
        parts = []
        if c.removed_steps:
            parts.append(f"removed a {c.removed_s:.2f} s pause ({c.removed_steps} steps)")
        elif c.idle_steps:
            parts.append(f"kept {c.idle_steps} idle step(s)")
        if c.blended_steps:
            parts.append(f"blended {len(c.blended_steps)} step(s) after a jump of {c.action_jump:.2f}")
        else:
            parts.append(f"action jump {c.action_jump:.2f}, not blended")
        parts.extend(c.notes)
        return parts


@dataclass(frozen=True, eq=False)
class HandOvers:
    """Every hand-over of an episode and where its smoothing came from."""

    episode_id: str
    items: tuple[HandOver, ...]
    origin: str
    """'stored' (the derivation in the store), 'computed' (here, not stored) or 'none'."""
    params: SmoothingParams
    problem: str = ""
    """Why there is no smoothed side ('' when there is one)."""


def _window(t: np.ndarray, values: np.ndarray, dims: list[int]) -> tuple[np.ndarray, np.ndarray]:
    inside = (t >= -BEFORE_S) & (t <= AFTER_S)
    return t[inside], np.asarray(values, dtype=np.float64)[inside][:, dims]


def hand_overs(
    episode: Episode,
    smoothed: SmoothedEpisode | None,
    params: SmoothingParams,
    origin: str,
    problem: str = "",
    edits: Sequence[BoundaryEdit] = (),
) -> HandOvers:
    """The hand-overs of ``episode`` with their smoothed side from ``smoothed`` (None: raw only)
    and the ``edits`` of its boundaries that count."""
    bounds = find_boundaries(episode, INTERVENTION_KINDS)
    n_dims = episode.action.shape[1] if episode.action.ndim == 2 else 0
    dims = [d for d in params.motion_action_dims if d < n_dims] or list(range(min(n_dims, 3)))
    ts = np.asarray(episode.timestamps, dtype=np.float64)
    changes = {c.raw_step: c for c in smoothed.changes} if smoothed is not None else {}
    edited = {(e.kind.value, e.recorded_step): e for e in effective_boundaries(episode, edits)}
    items = []
    for b in bounds:
        t0 = float(ts[b.step])
        raw_t, raw_a = _window(ts - t0, episode.action, dims)
        if smoothed is not None:
            smooth_t, smooth_a = _window(smoothed.timestamps - t0, smoothed.action, dims)
        else:
            smooth_t, smooth_a = np.zeros(0), np.zeros((0, len(dims)))
        names = tuple(f"a{d}" for d in dims)
        change = changes.get(b.step)
        blended = removed = None
        if change is not None and change.blended_steps:
            spans = ts[list(change.blended_steps)] - t0
            blended = (float(spans.min()), float(spans.max()))
        if change is not None and change.removed_steps:
            removed = (float(ts[change.removed_start] - t0), float(ts[change.removed_stop - 1] - t0))
        eff = edited.get((b.kind.value, b.step))
        moved_to = pre = None
        if eff is not None and eff.moved:
            moved_to = float(ts[eff.step] - t0)
        if eff is not None and eff.pre_window_start is not None:
            pre = (float(ts[eff.pre_window_start] - t0), float(ts[eff.step] - t0))
        edit = eff.edit if eff is not None else None
        items.append(
            HandOver(
                b, change, raw_t, raw_a, smooth_t, smooth_a, names, blended, removed, edit, moved_to, pre
            )
        )
    return HandOvers(episode.meta.episode_id, tuple(items), origin, params, problem)


def load_hand_overs(store: Store, episode: Episode, params: SmoothingParams | None = None) -> HandOvers:
    """The hand-overs of ``episode`` (read from ``store``), smoothed by the stored derivation with
    ``params`` (default parameters if None), else smoothed now without storing it."""
    params = params if params is not None else SmoothingParams()
    if not find_boundaries(episode, INTERVENTION_KINDS):
        return hand_overs(episode, None, params, "none")
    edits = store.boundaries.current([episode.meta.episode_id]).get(episode.meta.episode_id, [])
    try:
        stored = load_smoothed(store, episode.meta.episode_id, params)
    except StorageError as exc:
        stored, problem = None, f"the stored smoothing could not be read ({exc}); computed now"
    else:
        problem = ""
    if stored is not None:
        return hand_overs(episode, stored, params, "stored", edits=edits)
    try:
        computed = smooth_episode(episode, params)
    except ValueError as exc:  # parameters that do not fit this episode's streams
        return hand_overs(episode, None, params, "none", f"smoothing does not apply: {exc}", edits)
    return hand_overs(episode, computed, params, "computed", problem, edits)
