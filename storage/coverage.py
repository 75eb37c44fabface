"""Which steps of an episode hold a real frame of each camera, and what that means for a version.

A step has a frame of a camera when the episode has that camera, a frame of it was captured at
or before the step, and the camera was not down there (between a ``camera_down`` event and the
next ``camera_up`` of the same camera, or to the end when it never came back). Elsewhere the
pull side gives a zero image with ``images.<camera>.valid`` false, and a version's summary says
how many steps that is (``takeover data show``, :attr:`EpisodeDataset.camera_coverage`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from takeover.storage.episode_file import Timeline
from takeover.storage.schema import Event, EventKind, event_camera

SHOWN_IDS = 5
"""Episode ids named in a summary line at most (then a count)."""


def outages(events: Sequence[Event], camera: str, num_steps: int) -> list[tuple[int, int]]:
    """Step ranges ``[start, stop)`` in which ``camera`` was down."""
    out: list[tuple[int, int]] = []
    down_at: int | None = None
    for e in events:
        if e.kind not in (EventKind.CAMERA_DOWN, EventKind.CAMERA_UP) or event_camera(e) != camera:
            continue
        if e.kind is EventKind.CAMERA_DOWN and down_at is None:
            down_at = e.step
        elif e.kind is EventKind.CAMERA_UP and down_at is not None:
            out.append((down_at, max(down_at, e.step)))
            down_at = None
    if down_at is not None:
        out.append((down_at, num_steps))
    return out


def valid_steps(
    num_steps: int, events: Sequence[Event], camera: str, frame_steps: np.ndarray | None
) -> np.ndarray:
    """(num_steps,) bool: the steps that have a real frame of ``camera`` (``frame_steps``: the step
    of each of its frames; None when the episode has no such camera)."""
    valid = np.zeros(num_steps, dtype=bool)
    if frame_steps is None or frame_steps.shape[0] == 0:
        return valid
    valid[max(int(frame_steps.min()), 0) :] = True
    for start, stop in outages(events, camera, num_steps):
        valid[start:stop] = False
    return valid


def camera_masks(timeline: Timeline, cameras: Sequence[str]) -> dict[str, np.ndarray]:
    """For each of ``cameras``, the steps of an episode that have a real frame of it."""
    t = timeline
    return {c: valid_steps(t.num_steps, t.events, c, t.frame_steps.get(c)) for c in cameras}


@dataclass(frozen=True)
class CameraCoverage:
    """How much of a version one camera covers."""

    camera: str
    episodes: int
    steps: int
    missing: tuple[str, ...]
    """Episodes without this camera at all."""
    partial: tuple[tuple[str, int], ...]
    """Episodes with this camera that lack a frame at some steps: (episode id, such steps)."""
    masked_steps: int
    """Steps without a frame, over the whole version."""

    def line(self) -> str:
        if not self.masked_steps:
            return f"{self.camera}: every step"
        parts = []
        if self.missing:
            parts.append(
                f"no frame at all in {len(self.missing)} of {_n(self.episodes, 'episode')} "
                f"({_ids(self.missing)})"
            )
        if self.partial:
            steps = sum(n for _, n in self.partial)
            ids = _ids(tuple(eid for eid, _ in self.partial))
            where = f"{_n(steps, 'step')} of {_n(len(self.partial), 'episode')} ({ids})"
            parts.append(f"no frame (down, or none yet) at {where}")
        return (
            f"{self.camera}: {self.masked_steps} of {self.steps} steps masked "
            f"(images.{self.camera}.valid is false there): " + "; ".join(parts)
        )


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _ids(ids: tuple[str, ...]) -> str:
    shown = ", ".join(ids[:SHOWN_IDS])
    return shown if len(ids) <= SHOWN_IDS else f"{shown} and {len(ids) - SHOWN_IDS} more"


def coverage(episode_ids: Sequence[str], timelines: Sequence[Timeline]) -> dict[str, CameraCoverage]:
    """Per camera of any of the episodes (a version's), how much of them it covers."""
    cameras = sorted({c for t in timelines for c in t.frame_steps})
    return masks_coverage(episode_ids, [camera_masks(t, cameras) for t in timelines])


def masks_coverage(
    episode_ids: Sequence[str], masks: Sequence[dict[str, np.ndarray]]
) -> dict[str, CameraCoverage]:
    """:func:`coverage` from masks already made (:func:`camera_masks` over the same cameras)."""
    cameras = sorted({c for m in masks for c in m})
    out = {}
    for cam in cameras:
        missing, partial, masked, total = [], [], 0, 0
        for eid, m in zip(episode_ids, masks, strict=True):
            valid = m[cam]
            bad = int(valid.shape[0] - np.count_nonzero(valid))
            masked += bad
            total += int(valid.shape[0])
            if not valid.any():
                missing.append(eid)
            elif bad:
                partial.append((eid, bad))
        out[cam] = CameraCoverage(cam, len(masks), total, tuple(missing), tuple(partial), masked)
    return out
