"""Boundary smoothing: remove the discontinuities that hand-overs leave in recorded data.

At each takeover and hand-back, in step order:

1. **Pause.** The leading run of idle steps of the new segment (every motion component of the
   action at most ``idle_action_threshold``) is the operator's reaction pause (or the policy's
   start-up). It is removed if it is at most ``max_pause_s`` long and the end effector stayed
   within ``idle_position_threshold`` of where it was at the boundary. The last step of a segment
   is always kept, so every control change survives. Removing the pause moves all later samples
   earlier by its length; the total move never exceeds ``max_time_shift_s`` (removal is cut
   short instead).
2. **Jump.** If the first action after the boundary differs from the last action before it by
   more than ``action_jump_threshold`` in a motion component, the first ``blend_window`` actions
   of the new segment are cross-faded from the previous action (minimum-jerk or linear weights).
   The first weight is capped so the remaining step is at most half the threshold, and never
   makes an active first step idle.
3. **Frames.** Frames captured during a removed pause are dropped; within ``frame_window`` steps
   of a boundary, a frame with the same bytes as the frame before (stalled camera) or whose time
   does not advance (duplicate) is dropped.

The raw episode is never modified. The result depends only on the episode and the parameters,
and smoothing the derived episode again changes nothing.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from takeover.annotation.blend import blend_weights
from takeover.annotation.boundaries import INTERVENTION_KINDS, find_boundaries, segment_end
from takeover.annotation.params import SmoothingParams
from takeover.annotation.smoothed import (
    BoundaryChange,
    CameraSelection,
    DroppedFrame,
    SmoothedEpisode,
    frozen,
    prior_time_shift,
)
from takeover.storage.schema import CameraStream, Episode, Event

_EPS = 1e-9
"""Tolerance (s) of time comparisons, far below any sample period."""
_MARGIN = 1.01
"""A blended first action keeps its magnitude this far above the idle threshold."""


def _check_dims(ep: Episode, params: SmoothingParams) -> None:
    a_dim = ep.action.shape[1] if ep.action.ndim == 2 else 0
    s_dim = ep.state.shape[1] if ep.state.ndim == 2 else 0
    if max(params.motion_action_dims) >= a_dim:
        raise ValueError(
            f"episode {ep.meta.episode_id}: motion_action_dims {list(params.motion_action_dims)} "
            f"do not fit its {a_dim}-component actions"
        )
    if max(params.position_state_dims) >= s_dim:
        raise ValueError(
            f"episode {ep.meta.episode_id}: position_state_dims {list(params.position_state_dims)} "
            f"do not fit its {s_dim}-component state"
        )


def _idle_run(action: np.ndarray, b: int, e: int, dims: np.ndarray, threshold: float) -> int:
    mags = np.max(np.abs(action[b:e][:, dims]), axis=1)
    active = np.flatnonzero(~(mags <= threshold))  # NaN counts as active
    return int(active[0]) if active.size else e - b


def _is_idle(values: np.ndarray, threshold: float) -> bool:
    return bool(np.max(np.abs(values)) <= threshold)


def smooth_episode(episode: Episode, params: SmoothingParams | None = None) -> SmoothedEpisode:
    """Derive the boundary-smoothed view of ``episode`` (which is left untouched)."""
    params = params if params is not None else SmoothingParams()
    episode.validate()
    _check_dims(episode, params)
    n_steps = episode.num_steps
    ts = np.asarray(episode.timestamps, dtype=np.float64)
    cs = np.asarray(episode.control_source)
    pos = np.asarray(episode.state)[:, list(params.position_state_dims)].astype(np.float64)
    dims = np.asarray(params.motion_action_dims, dtype=np.int64)
    action = np.array(episode.action, dtype=np.float32, copy=True)
    removed = np.zeros(n_steps, dtype=bool)
    shift_from = np.zeros(n_steps + 1, dtype=np.float64)  # shift added from each raw step on
    prior = prior_time_shift(episode.meta.extra)
    allowed = max(0.0, params.max_time_shift_s - prior)
    used = 0.0
    changes: list[BoundaryChange] = []
    for bd in find_boundaries(episode, INTERVENTION_KINDS):
        b, e = bd.step, segment_end(cs, bd.step)
        notes: list[str] = []
        # 1. pause
        idle = _idle_run(action, b, e, dims, params.idle_action_threshold)
        n = 0
        if bd.kind.value in params.pause_kinds and idle > 0:
            cap = min(idle, e - b - 1)
            window = ts[b : b + cap + 1] - ts[b]
            moved = float(np.max(np.linalg.norm(pos[b : b + cap + 1] - pos[b], axis=1)))
            if cap == 0:
                notes.append("idle to the end of its segment: the segment's last step is kept")
            elif np.any(np.diff(window) <= 0):
                notes.append("pause kept: timestamps do not increase through it")
            elif window[-1] > params.max_pause_s + _EPS:
                notes.append(f"pause of {window[-1]:.3f} s kept: longer than max_pause_s")
            elif not moved <= params.idle_position_threshold:
                notes.append(f"pause kept: the end effector moved {moved:.4f} m during it")
            else:
                fits = np.flatnonzero(window > allowed - used + _EPS)
                n = int(fits[0]) - 1 if fits.size else cap
                if n < cap:
                    notes.append(f"pause cut to {window[n]:.3f} s of {window[-1]:.3f} s by max_time_shift_s")
                if idle > cap:
                    notes.append("idle to the end of its segment: the segment's last step is kept")
        removed_s = float(ts[b + n] - ts[b]) if n else 0.0
        if n:
            removed[b : b + n] = True
            shift_from[b + n] += removed_s
            used += removed_s
        k = b + n  # first kept step of the new segment
        # 2. jump
        prev = action[b - 1, dims].astype(np.float64)
        first = action[k, dims].astype(np.float64)
        jump = float(np.max(np.abs(first - prev)))
        blended: tuple[int, ...] = ()
        w0 = 0.0
        if np.isfinite(jump) and jump > params.action_jump_threshold and params.blend_window > 0:
            steps = np.arange(k, min(k + params.blend_window, e))
            weights = blend_weights(params.blend_window, len(steps), params.blend_profile)
            weights[0] = min(weights[0], 0.5 * params.action_jump_threshold / jump)
            chosen = _first_weight(prev, first, weights[0], params.idle_action_threshold)
            if chosen is None:
                notes.append("jump kept: any blend would make the first active step idle")
            else:
                weights[0] = chosen
                raw_part = action[steps][:, dims].astype(np.float64)
                mixed = prev + weights[:, None] * (raw_part - prev)
                action[np.ix_(steps, dims)] = mixed.astype(np.float32)
                blended, w0 = tuple(int(s) for s in steps), float(chosen)
        pjump = float(np.linalg.norm(pos[k] - pos[b - 1]))
        if pjump > params.position_jump_threshold:
            notes.append(f"position jump of {pjump:.4f} m (reported; the state is never changed)")
        changes.append(
            BoundaryChange(
                kind=bd.kind.value,
                raw_step=b,
                step=-1,
                time=bd.time,
                idle_steps=idle,
                removed_start=b,
                removed_stop=b + n,
                removed_s=removed_s,
                action_jump=jump if np.isfinite(jump) else float("nan"),
                blended_steps=blended,
                blend_first_weight=w0,
                position_jump=pjump,
                notes=tuple(notes),
            )
        )
    keep = np.flatnonzero(~removed).astype(np.int64)
    shift = np.cumsum(shift_from)  # shift[s]: how far raw step s (or an event at s) moves
    new_changes = tuple(replace(c, step=int(np.searchsorted(keep, c.removed_stop))) for c in changes)
    cams, dropped = _select_frames(episode, keep, removed, shift, new_changes, params.frame_window)
    events = tuple(_shift_event(ev, keep, shift, n_steps) for ev in episode.events)
    return SmoothedEpisode(
        episode_id=episode.meta.episode_id,
        params=params,
        num_raw_steps=n_steps,
        keep=frozen(keep),
        timestamps=frozen(ts[keep] - shift[keep]),
        action=frozen(action[keep]),
        time_shift=frozen(shift[keep].copy()),
        cameras=cams,
        events=events,
        changes=new_changes,
        dropped_frames=dropped,
        prior_time_shift_s=prior,
    )


def _first_weight(prev: np.ndarray, first: np.ndarray, w: float, idle: float) -> float | None:
    """The largest weight <= ``w`` (on a fixed grid) keeping an active first action active."""
    if _is_idle(first, idle):
        return w
    for frac in np.linspace(1.0, 0.0, 9):
        value = (prev + frac * w * (first - prev)).astype(np.float32)
        if float(np.max(np.abs(value))) > idle * _MARGIN + 1e-6:
            return float(frac * w)
    return None


def _shift_event(ev: Event, keep: np.ndarray, shift: np.ndarray, n_steps: int) -> Event:
    """Map an event's step into the kept index; move its time by the removals that end at or
    before its step (an event at a removed boundary step keeps the time it had)."""
    step = int(np.searchsorted(keep, ev.step))
    moved = float(shift[min(max(ev.step, 0), n_steps)])
    return Event(ev.kind, step, ev.t - moved, ev.reason)


def _frame_shift(shift: np.ndarray, steps: np.ndarray, n_steps: int) -> np.ndarray:
    if n_steps == 0:
        return np.zeros(steps.shape[0], dtype=np.float64)
    return shift[np.clip(steps, 0, n_steps - 1)]


def _select_frames(
    ep: Episode,
    keep: np.ndarray,
    removed: np.ndarray,
    shift: np.ndarray,
    changes: tuple[BoundaryChange, ...],
    frame_window: int,
) -> tuple[dict[str, CameraSelection], tuple[DroppedFrame, ...]]:
    n_steps = ep.num_steps
    windows = [(c.step - frame_window, c.step + frame_window) for c in changes] if frame_window else []
    out: dict[str, CameraSelection] = {}
    dropped: list[DroppedFrame] = []
    for name in sorted(ep.cameras):
        cam: CameraStream = ep.cameras[name]
        raw_steps = np.asarray(cam.step_index, dtype=np.int64)
        new_steps = np.searchsorted(keep, raw_steps).astype(np.int64)
        new_ts = np.asarray(cam.timestamps, dtype=np.float64) - _frame_shift(shift, raw_steps, n_steps)
        kept: list[int] = []
        prev_bytes: bytes | None = None
        for i in range(raw_steps.shape[0]):
            s = int(raw_steps[i])
            if 0 <= s < n_steps and removed[s]:
                dropped.append(DroppedFrame(name, i, s, "pause"))
                continue
            in_window = any(lo <= new_steps[i] < hi for lo, hi in windows)
            if in_window and kept:
                last = kept[-1]
                if prev_bytes is None:
                    prev_bytes = bytes(cam.frames[last])
                data = bytes(cam.frames[i])
                if data == prev_bytes:
                    dropped.append(DroppedFrame(name, i, s, "stalled"))
                    continue
                if not new_ts[i] > new_ts[last]:
                    dropped.append(DroppedFrame(name, i, s, "duplicate"))
                    continue
                prev_bytes = data
            else:
                prev_bytes = None
            kept.append(i)
        idx = np.asarray(kept, dtype=np.int64)
        out[name] = CameraSelection(
            index=frozen(idx), timestamps=frozen(new_ts[idx].copy()), step_index=frozen(new_steps[idx].copy())
        )
    return out, tuple(dropped)
