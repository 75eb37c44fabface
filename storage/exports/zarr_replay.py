"""A version as a diffusion_policy replay buffer (``replay_buffer.zarr``), read by its
``ReplayBuffer.copy_from_path`` / ``create_from_path`` as it is.

diffusion_policy's environment pins zarr 2, so the store is written in zarr format 2 (``.zgroup``
and ``.zarray`` files, Blosc-compressed chunks). Layout::

    replay_buffer.zarr/            attrs rate_hz, cameras, labels, control_source, tag, version, videos
      data/<key>                   the episodes' steps one after another along axis 0, chunked along it
        action (N, A) float32      state (N, S) float32      proposed_action (N, A) float32 (NaN: none)
        control_source (N,) int64  intervention (N,) bool (the human drove)
        control_class (N,) int64   value_target (N,) float32   improvement (N,) bool
                                   (only when the version pins training labels)
        timestamp (N,) float64     the step's slot on the control grid (see below)
        recorded_timestamp (N,) float64    when the step's observation was produced (monotonic)
        <camera> (N, H, W, 3) uint8 RGB, one step per chunk     <camera>_valid (N,) bool
      meta/
        episode_ends (E,) int64    cumulative: episode i holds steps [ends[i-1], ends[i])
        episode_id (E,) str        episode_label (E,) str (success, near_success, failure)
        episode_interventions (E,) int64       episode_start_step (E,) int64
    videos/<i>/<c>.mp4             with ``--videos``, instead of data/<camera>: episode i, camera c
                                   of attrs ``cameras`` (sorted names), one frame per step

``timestamp`` is the recorded time of the episode's first exported step plus ``k / rate``, as
diffusion_policy's own recorder writes it (the time of the step's slot, not of its sample):
its video loader steps through a video by ``timestamp[1] - timestamp[0]``, which a jittered
recorded time would shift by a step. The recorded times are in ``recorded_timestamp``.

A step before a camera's first frame has zeros (a black video frame) and false in
``<camera>_valid``, and the export says how many such steps there are. Video frames of an odd
height or width are padded by one edge row or column (4:2:0 video needs even sizes); attrs
``cameras`` has the true size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numcodecs
import numpy as np
import zarr

from takeover.storage.derived import TRAINING_KEYS
from takeover.storage.exports.common import (
    LABELS,
    Chosen,
    EarlySteps,
    ExportError,
    ExportSettings,
    check_uniform,
    frames_at_steps,
    human_steps,
    interventions,
    label_of,
    uniform_cameras,
)
from takeover.storage.jpeg import decode_rgb
from takeover.storage.progress import progress_bar
from takeover.storage.schema import ControlSource, Episode
from takeover.storage.store import Store
from takeover.storage.video import check_encoder, encode_video

FILE = "replay_buffer.zarr"
MAIN = FILE
"""What the command points to when the export is done (diffusion_policy's ``zarr_path``; with
``--videos`` its real-robot ``dataset_path`` is the export folder)."""
VIDEOS = "videos"
VIDEO_FILES = "videos/<episode index>/<index in attrs cameras>.mp4"
LOWDIM = (
    "action",
    "state",
    "proposed_action",
    "control_source",
    "intervention",
    "timestamp",
    "recorded_timestamp",
)
"""The per-step arrays besides the cameras' (``_lowdim`` makes them)."""

LOWDIM_CHUNK_BYTES = 2_000_000
"""Low-dimensional arrays are chunked along time in pieces of about this size (whole when smaller),
as diffusion_policy's own default."""
IMAGE_BLOCK_BYTES = 64 << 20
"""Images are decoded and written this many bytes of steps at a time."""
COMPRESSOR = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)
"""Fast to decode: diffusion_policy keeps the chunks compressed in memory and decodes them while
training."""


def write(
    store: Store,
    chosen: Chosen,
    folder: Path,
    settings: ExportSettings | None = None,
    *,
    progress: bool = False,
    say: Callable[[str], None] = print,
) -> int:
    """Write ``chosen`` into ``folder / replay_buffer.zarr`` (and ``folder / videos`` with
    ``settings.zarr_videos``); returns the number of steps written."""
    settings = settings or ExportSettings()
    episodes = [store.read_episode(e.episode_id) for e in chosen.entries]
    check_uniform(episodes, "the diffusion_policy replay buffer")
    cameras = _uniform_cameras(episodes, chosen.training is not None)
    videos = settings.zarr_videos and bool(cameras)
    if videos:
        check_encoder(settings.video)
    lengths = [e.stop - e.start for e in chosen.entries]
    ends = np.cumsum(lengths, dtype=np.int64)
    total = int(ends[-1])
    rate = float(episodes[0].meta.rate_hz)
    if videos and rate != round(rate):
        raise ExportError(
            f"videos hold a whole number of frames per second, and these episodes were recorded at "
            f"{rate:g} Hz; export without --videos"
        )

    root = zarr.open_group(str(folder / FILE), mode="w-", zarr_format=2)
    data = root.create_group("data")
    images: dict[str, zarr.Array] = {}
    if not videos:
        for cam, (h, w) in cameras.items():
            images[cam] = _array(data, cam, (total, h, w, 3), np.uint8, 1)
    columns: dict[str, list[np.ndarray]] = {}
    early = EarlySteps()
    with progress_bar("exporting episodes", len(episodes), enabled=progress, unit="episodes") as advance:
        for i, (entry, ep) in enumerate(zip(chosen.entries, episodes, strict=True)):
            start, stop = entry.start, entry.stop
            offset = int(ends[i]) - (stop - start)
            steps = _lowdim(ep, start, stop, rate)
            if chosen.training is not None:
                steps.update(chosen.training.steps[i])
            for c, cam in enumerate(cameras):
                at, h, w = frames_at_steps(ep, cam, start, stop)
                valid = np.array([a is not None for a in at])
                steps[f"{cam}_valid"] = valid
                early.add(cam, ep.meta.episode_id, valid)
                if videos:
                    out = folder / VIDEOS / str(i) / f"{c}.mp4"
                    out.parent.mkdir(parents=True, exist_ok=True)
                    _write_video(ep, cam, at, start, (h, w), rate, settings, out)
                else:
                    _write_images(images[cam], offset, ep, cam, at)
            for key, values in steps.items():
                columns.setdefault(key, []).append(values)
            advance(1)
    for key, parts in columns.items():
        values = np.concatenate(parts)
        rows = min(len(values), LOWDIM_CHUNK_BYTES // max(1, values[:1].nbytes))
        _array(data, key, values.shape, values.dtype, rows)[...] = values

    _write_meta(root.create_group("meta"), chosen, episodes, ends)
    early.report(say, "black video frames" if videos else "zeros", lambda camera: f"{camera}_valid")
    root.attrs.update(
        {
            "rate_hz": rate,
            "cameras": {cam: [h, w] for cam, (h, w) in cameras.items()},
            "labels": list(LABELS),
            "control_source": {str(int(s)): s.name.lower() for s in ControlSource},
            "tag": chosen.tag,
            "version": chosen.digest,
            "videos": {"codec": settings.video.resolved().codec, "files": VIDEO_FILES} if videos else None,
        }
    )
    return total


def _write_meta(meta: zarr.Group, chosen: Chosen, episodes: Sequence[Episode], ends: np.ndarray) -> None:
    """``episode_ends`` and the per-episode arrays, each uncompressed in one chunk (as
    diffusion_policy writes ``episode_ends``; its ReplayBuffer loads every array of ``meta``)."""
    entries = chosen.entries
    width = max(len(label) for label in LABELS)
    taken = [interventions(ep, e.start, e.stop) for e, ep in zip(entries, episodes, strict=True)]
    for name, values in (
        ("episode_ends", ends),
        ("episode_id", np.array([e.episode_id for e in entries], dtype=str)),
        ("episode_label", np.array([label_of(e) for e in entries], dtype=f"<U{width}")),
        ("episode_interventions", np.array(taken, dtype=np.int64)),
        ("episode_start_step", np.array([e.start for e in entries], dtype=np.int64)),
    ):
        meta.create_array(name, data=values, chunks=values.shape, compressors=None)


def _uniform_cameras(episodes: Sequence[Episode], training: bool) -> dict[str, tuple[int, int]]:
    """:func:`uniform_cameras`, and no camera named as a low-dimensional array (``training``: or
    as a training-label array)."""
    cameras = uniform_cameras(episodes, "the replay buffer", "array")
    first = episodes[0].cameras
    clash = sorted((set(LOWDIM) | (set(TRAINING_KEYS) if training else set())) & set(first))
    if clash:
        raise ExportError(f"a camera named {clash[0]!r} would overwrite that array of the replay buffer")
    return cameras


def _lowdim(ep: Episode, start: int, stop: int, rate: float) -> dict[str, np.ndarray]:
    recorded = np.asarray(ep.timestamps, dtype=np.float64)[start:stop]
    source = np.asarray(ep.control_source)[start:stop]
    return {
        "action": np.asarray(ep.action, dtype=np.float32)[start:stop],
        "state": np.asarray(ep.state, dtype=np.float32)[start:stop],
        "proposed_action": np.asarray(ep.proposed_action, dtype=np.float32)[start:stop],
        "control_source": source.astype(np.int64),
        "intervention": human_steps(source),
        "timestamp": recorded[0] + np.arange(stop - start, dtype=np.float64) / rate,
        "recorded_timestamp": recorded,
    }


def _array(group: zarr.Group, name: str, shape: tuple[int, ...], dtype: Any, chunk_steps: int) -> zarr.Array:
    """A zarr format 2 array chunked along time only, ``chunk_steps`` steps per chunk."""
    chunks = (max(1, chunk_steps), *shape[1:])
    return group.create_array(
        name, shape=shape, chunks=chunks, dtype=dtype, compressors=COMPRESSOR, fill_value=0
    )


def _write_images(arr: zarr.Array, offset: int, ep: Episode, camera: str, at: list[int | None]) -> None:
    """Decode the frame of each step and write them at ``arr[offset:]``, a block of steps at a time;
    zeros where there is none."""
    h, w = int(arr.shape[1]), int(arr.shape[2])
    frames = ep.cameras[camera].frames
    block = max(1, IMAGE_BLOCK_BYTES // (h * w * 3))
    last: int | None = None
    rgb = np.zeros((h, w, 3), dtype=np.uint8)
    for lo in range(0, len(at), block):
        part = at[lo : lo + block]
        out = np.zeros((len(part), h, w, 3), dtype=np.uint8)
        for k, frame in enumerate(part):
            if frame is None:
                continue
            if frame != last:
                rgb, last = decode_rgb(frames[frame]), frame
                if rgb.shape != (h, w, 3):
                    raise ExportError(
                        f"episode {ep.meta.episode_id}: a frame of camera {camera} is "
                        f"{rgb.shape[1]}x{rgb.shape[0]}, the stream {w}x{h}"
                    )
            out[k] = rgb
        arr[offset + lo : offset + lo + len(part)] = out


def _write_video(
    ep: Episode,
    camera: str,
    at: list[int | None],
    start: int,
    size: tuple[int, int],
    rate: float,
    settings: ExportSettings,
    out: Path,
) -> None:
    """One frame per step at the control rate: the step's latest frame, black before the first."""
    frames = ep.cameras[camera].frames
    black = cv2.imencode(".jpg", np.zeros((*size, 3), dtype=np.uint8))[1].tobytes()
    n = len(at)
    encode_video(
        (black if frame is None else frames[frame] for frame in at),
        np.arange(n, dtype=np.float64) / rate,
        np.arange(start, start + n, dtype=np.int64),
        size,
        settings.video,
        out,
    )
