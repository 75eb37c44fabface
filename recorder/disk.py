"""Disk space for recording: whether an attempt fits before it starts, and a full disk in words.

An attempt's size is estimated from what it may record at most: ``max_steps`` steps (their
low-dimensional records twice: the write-ahead log and the episode file), one frame per step of
each station camera, and the frames of each free-running camera at its nominal rate for the
attempt's longest duration. A frame is counted at the average JPEG size this recorder has
written for that camera, or at :data:`JPEG_BYTES_PER_PIXEL` before it has written any.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from takeover.recorder.cameras import CameraSpec
from takeover.recorder.records import AttemptPlan
from takeover.storage.errors import StorageError
from takeover.storage.schema import Episode, FrameBlob

JPEG_BYTES_PER_PIXEL = 0.4
"""Bytes per pixel of a JPEG frame before any was measured: the largest seen at quality 90 on
textured 640x480 frames (70-124 KB, MEASUREMENTS.md); finer qualities are scaled up."""
ASSUMED_IMAGE = (480, 640)
"""(height, width) assumed for a station camera whose frames were not seen yet."""
STEP_OVERHEAD_BYTES = 256
"""Per step, besides its arrays: record headers, msgpack keys, time, flags, frame index rows."""
FILE_OVERHEAD_BYTES = 1 << 20
"""An episode file's own structure (HDF5 headers, metadata, events), generously."""
_FULL = (errno.ENOSPC, errno.EDQUOT)
DOCTOR_HINT = "run `takeover doctor --repair` to store what was recorded"


class DiskFullError(StorageError):
    """A write failed because the disk (or the user's quota) is full; the message says where."""


def disk_full(exc: BaseException) -> bool:
    """True when ``exc`` is a write refused for lack of space (also as h5py raises it)."""
    return isinstance(exc, OSError) and exc.errno in _FULL


def full_disk_line(path: Path, what: str, then: str = "try again") -> str:
    """One line for a person: what could not be written where, and what to do."""
    return f"no space left on the disk of {path} ({what}): free some space there, then {then}"


@dataclass(frozen=True)
class SpaceEstimate:
    bytes: int
    detail: str
    """What the estimate counts, for a person ('600 steps at 20 Hz; corner 168x224 per step; ...')."""


def jpeg_bytes_per_pixel(quality: int) -> float:
    """A generous JPEG size per pixel at ``quality`` (1..100) before frames were measured."""
    return JPEG_BYTES_PER_PIXEL * (1.0 if quality <= 90 else 1.0 + (quality - 90) * 0.2)


def estimate_attempt(
    plan: AttemptPlan,
    station_shapes: Mapping[str, tuple[int, int]],
    free_cameras: Sequence[CameraSpec],
    frame_bytes: Mapping[str, float],
    bytes_per_pixel: float,
) -> SpaceEstimate:
    """The most an attempt like ``plan`` writes. ``station_shapes``: (height, width) of the station
    cameras seen so far; ``frame_bytes``: average encoded frame size per camera written so far."""

    def frame_size(name: str, height: int, width: int) -> float:
        return frame_bytes.get(name) or height * width * bytes_per_pixel

    seconds = plan.max_steps / plan.rate_hz
    per_step = STEP_OVERHEAD_BYTES + 4 * (plan.state_dim + 2 * plan.action_dim)
    total = 2.0 * per_step * plan.max_steps
    parts = [f"{plan.max_steps} steps at {plan.rate_hz:g} Hz"]
    for name in plan.cameras:
        h, w = station_shapes.get(name, ASSUMED_IMAGE)
        total += plan.max_steps * frame_size(name, h, w)
        assumed = "" if name in station_shapes else " assumed"
        parts.append(f"{name} {w}x{h}{assumed} every step")
    for spec in free_cameras:
        total += seconds * spec.fps * frame_size(spec.name, spec.height, spec.width)
        parts.append(f"{spec.name} {spec.width}x{spec.height} at {spec.fps:g} fps")
    return SpaceEstimate(int(total), "; ".join(parts))


def episode_file_bytes(ep: Episode) -> int:
    """About how much writing ``ep``'s episode file takes (its frame blobs are adopted, not copied)."""
    total = FILE_OVERHEAD_BYTES
    for arr in (ep.timestamps, ep.state, ep.action, ep.proposed_action, ep.control_source):
        total += arr.nbytes
    for cam in ep.cameras.values():
        total += 32 * len(cam.frames)  # offset, length, time, step of each frame
        if not isinstance(cam.frames, FrameBlob):
            total += sum(len(f) for f in cam.frames)
    for st in ep.streams.values():
        total += st.timestamps.nbytes + st.values.nbytes
    return total


def free_bytes(path: Path) -> int:
    """Bytes free for an unprivileged writer on the filesystem holding ``path`` (or its nearest
    existing parent)."""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def megabytes(n: float) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n / 1e6:.2f} MB"


def space_refusal(path: Path, estimate: SpaceEstimate, margin: float) -> str:
    """'' when the disk of ``path`` holds ``margin`` times the estimate, else why not (one line)."""
    need = estimate.bytes * margin
    free = free_bytes(path)
    if free >= need:
        return ""
    return (
        f"not enough disk space to record an attempt: it may need {megabytes(need)} ({estimate.detail}; "
        f"x{margin:g} margin) and {path} has {megabytes(free)} free; free some space, or lower "
        f"loop.max_steps or [recorder] disk_margin"
    )
