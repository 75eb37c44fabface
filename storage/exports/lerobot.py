"""A version as a LeRobot dataset v3.0, read by ``LeRobotDataset(repo_id, root=DIR)`` as it is.

Layout (as LeRobot 0.6 writes it)::

    meta/info.json                               codebase_version "v3.0", fps, features, totals,
                                                 chunk and file sizes, path templates, robot_type,
                                                 splits; nothing of ours (LeRobot drops it)
    meta/stats.json                              feature -> min, max, mean, std, count, q01..q99
    meta/tasks.parquet                           task_index, with the task text as the index
    meta/episodes/chunk-000/file-000.parquet     one row per episode (below)
    data/chunk-000/file-000.parquet              one row per step, many episodes per file
    videos/observation.images.<cam>/chunk-000/file-000.mp4   one frame per step, many episodes

Per step: ``observation.state``, ``action``, ``observation.images.<cam>`` (video), ``timestamp``
(``frame_index / fps``: LeRobot requires steps exactly 1/fps apart), ``frame_index``,
``episode_index``, ``index``, ``task_index``, ``next.done``, ``next.success``, ``next.reward``,
and ours: ``intervention`` (bool, the human drove, as LeRobot's DAgger rollouts write it),
``control_source`` (0 policy, 1 human, 2 hold, 3 hand-back ramp), ``proposed_action`` (the
policy's proposal, NaN where there was none), ``recorded_time`` (the recorded monotonic time of
the step, in seconds since the episode's first exported step: LeRobot hands float columns over
as float32, too coarse for absolute monotonic times; the episode's ``recorded_start`` adds back)
and ``image_valid.<cam>`` (false for steps before the camera's first frame,
whose picture is black). A version that pins training labels (:mod:`takeover.storage.derived`)
adds ``control_class`` (int64), ``value_target`` (float32) and ``improvement`` (bool), with their
statistics like every feature; a version that pins none is written as before.

Per episode, beside LeRobot's own columns: ``label`` (success / near_success / failure),
``interventions`` (takeovers within the exported steps), ``human_steps``, ``episode_id``,
``station``, ``operator``, ``policy_id``, ``start_step`` (the first recorded step exported),
``recorded_start``, so
``LeRobotDataset(..., episode_filter=lambda ep: ep["label"] == "success")`` selects on them.

Each camera contributes, per step, the latest frame captured at or before it (as ``pull`` shows
it): free-running cameras are resampled to the control rate. A file is closed and the next one
started (``file-001``, ...; ``chunk-001`` after ``chunks_size`` files) once it has reached its size
setting, so a file may pass it by one episode.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from takeover.storage.derived import TRAINING_KEYS
from takeover.storage.exports.common import (
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
from takeover.storage.schema import Episode
from takeover.storage.store import Store
from takeover.storage.video import StreamEncoder, VideoError

CODEBASE_VERSION = "v3.0"
MAIN = "meta/info.json"
CHUNK_PATTERN = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DATA_PATH = "data/" + CHUNK_PATTERN + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_PATTERN + ".mp4"
EPISODES_PATH = "meta/episodes/" + CHUNK_PATTERN + ".parquet"
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
IMAGE_STATS_FRAMES = 40
"""Frames per episode and camera that image statistics are computed from (evenly spread)."""


@dataclass(frozen=True)
class Layout:
    """LeRobot's chunk and file size settings (its defaults)."""

    chunks_size: int = 1000
    data_files_size_in_mb: float = 100
    video_files_size_in_mb: float = 200
    """Sizes in MiB; LeRobot writes whole numbers, a fraction serves tests that want many files."""


def camera_key(camera: str) -> str:
    return f"observation.images.{camera}"


class _Slots:
    """Chunk and file numbers of one kind of file, in order."""

    def __init__(self, chunks_size: int) -> None:
        self.chunks_size = chunks_size
        self.chunk, self.file = 0, 0

    def next(self) -> None:
        self.file += 1
        if self.file == self.chunks_size:
            self.chunk, self.file = self.chunk + 1, 0


@dataclass
class _VideoFile:
    container: av.container.OutputContainer
    encoder: StreamEncoder
    slot: tuple[int, int]


@dataclass
class _Stats:
    """Values seen of one feature, for statistics over the dataset and per episode."""

    image: bool
    chunks: list[np.ndarray] = field(default_factory=list)


def _stats(values: np.ndarray, image: bool) -> dict[str, np.ndarray]:
    """LeRobot's statistics of ``values``: (N, D) over axis 0, or images (N, H, W, 3) uint8 per
    channel in [0, 1] with shape (3, 1, 1)."""
    if image:
        flat = values.reshape(-1, 3).astype(np.float64) / 255.0
        count = values.shape[0]
    else:
        flat = values.reshape(values.shape[0], -1).astype(np.float64)
        count = flat.shape[0]
    with np.errstate(invalid="ignore"):
        out = {
            "min": np.nanmin(flat, axis=0) if count else np.zeros(flat.shape[1]),
            "max": np.nanmax(flat, axis=0) if count else np.zeros(flat.shape[1]),
            "mean": np.nanmean(flat, axis=0) if count else np.zeros(flat.shape[1]),
            "std": np.nanstd(flat, axis=0) if count else np.zeros(flat.shape[1]),
        }
        for q in QUANTILES:
            key = f"q{round(q * 100):02d}"
            out[key] = np.nanquantile(flat, q, axis=0) if count else np.zeros(flat.shape[1])
    out = {k: np.nan_to_num(v) for k, v in out.items()}
    if image:
        out = {k: v.reshape(3, 1, 1) for k, v in out.items()}
    out["count"] = np.array([count], dtype=np.int64)
    return out


def _scalar(values: np.ndarray, dtype: pa.DataType) -> pa.Array:
    return pa.array(values, type=dtype)


def _vectors(values: np.ndarray, dtype: pa.DataType) -> pa.Array:
    values = np.ascontiguousarray(values)
    flat = pa.array(values.reshape(-1), type=dtype)
    return pa.FixedSizeListArray.from_arrays(flat, type=pa.list_(dtype, values.shape[1]))


class _Writer:
    def __init__(
        self,
        store: Store,
        chosen: Chosen,
        folder: Path,
        settings: ExportSettings,
        layout: Layout,
        say: Callable[[str], None],
    ) -> None:
        self.store, self.chosen, self.folder = store, chosen, folder
        self.settings, self.layout, self.say = settings, layout, say
        self.data_slots = _Slots(layout.chunks_size)
        self.data_writer: pq.ParquetWriter | None = None
        self.data_bytes = 0
        self.videos: dict[str, _VideoFile] = {}
        self.video_slots: dict[str, _Slots] = {}
        self.rows: list[dict[str, Any]] = []
        self.tasks: dict[str, int] = {}
        self.stats: dict[str, _Stats] = {}
        self.frames_total = 0
        self.features: dict[str, dict[str, Any]] = {}
        self.fps = 0
        self.cameras: dict[str, tuple[int, int]] = {}
        self.early = EarlySteps()

    # -- the dataset's shape ---------------------------------------------------------------------

    def plan(self, first: Episode, episodes: list[Episode]) -> None:
        rate = float(first.meta.rate_hz)
        if not math.isclose(rate, round(rate), abs_tol=1e-9) or round(rate) <= 0:
            raise ExportError(
                f"LeRobot needs a whole number of frames per second, and these episodes were recorded "
                f"at {rate:g} Hz"
            )
        self.fps = round(rate)
        self.cameras = uniform_cameras(episodes, "LeRobot", "video feature")
        state_dim = int(np.asarray(first.state).shape[1])
        action_dim = int(np.asarray(first.action).shape[1])

        def vector(dtype: str, n: int, prefix: str) -> dict[str, Any]:
            return {"dtype": dtype, "shape": [n], "names": [f"{prefix}_{i}" for i in range(n)]}

        def scalar(dtype: str) -> dict[str, Any]:
            return {"dtype": dtype, "shape": [1], "names": None}

        features: dict[str, dict[str, Any]] = {
            "observation.state": vector("float32", state_dim, "state"),
            "action": vector("float32", action_dim, "action"),
        }
        for camera, (h, w) in self.cameras.items():
            eh, ew = h + h % 2, w + w % 2
            if (eh, ew) != (h, w):
                self.say(
                    f"camera {camera} is {w}x{h}: stored as {ew}x{eh} video, the last row or column "
                    "repeated (4:2:0 video needs even sizes)"
                )
            features[camera_key(camera)] = {
                "dtype": "video",
                "shape": [eh, ew, 3],
                "names": ["height", "width", "channels"],
                "info": None,
            }
        features.update(
            {
                "timestamp": scalar("float32"),
                "frame_index": scalar("int64"),
                "episode_index": scalar("int64"),
                "index": scalar("int64"),
                "task_index": scalar("int64"),
                "next.done": scalar("bool"),
                "next.success": scalar("bool"),
                "next.reward": scalar("float32"),
                "intervention": scalar("bool"),
                "control_source": scalar("int64"),
                "proposed_action": vector("float32", action_dim, "action"),
                "recorded_time": scalar("float64"),
            }
        )
        for camera in self.cameras:
            features[f"image_valid.{camera}"] = scalar("bool")
        if self.chosen.training is not None:
            features.update({key: scalar(np.dtype(t).name) for key, t in TRAINING_KEYS.items()})
        self.features = features
        for key, ft in features.items():
            self.stats[key] = _Stats(image=ft["dtype"] == "video")

    # -- one episode -------------------------------------------------------------------------------

    def add(
        self, index: int, ep: Episode, start: int, stop: int, label: str, derived: dict[str, np.ndarray]
    ) -> None:
        n = stop - start
        if n <= 0:
            raise ExportError(f"episode {ep.meta.episode_id} has no steps in the version's range")
        task = ep.meta.task
        task_index = self.tasks.setdefault(task, len(self.tasks))
        source = np.asarray(ep.control_source)[start:stop].astype(np.int64)
        recorded = np.asarray(ep.timestamps, dtype=np.float64)[start:stop]
        human = human_steps(source)
        done = np.zeros(n, dtype=bool)
        done[-1] = True
        success = np.zeros(n, dtype=bool)
        success[-1] = label == "success"
        reward = success.astype(np.float32)
        columns: dict[str, np.ndarray] = {
            "observation.state": np.asarray(ep.state, dtype=np.float32)[start:stop],
            "action": np.asarray(ep.action, dtype=np.float32)[start:stop],
            "timestamp": (np.arange(n) / self.fps).astype(np.float32),
            "frame_index": np.arange(n, dtype=np.int64),
            "episode_index": np.full(n, index, dtype=np.int64),
            "index": self.frames_total + np.arange(n, dtype=np.int64),
            "task_index": np.full(n, task_index, dtype=np.int64),
            "next.done": done,
            "next.success": success,
            "next.reward": reward,
            "intervention": human,
            "control_source": source,
            "proposed_action": np.asarray(ep.proposed_action, dtype=np.float32)[start:stop],
            "recorded_time": recorded - recorded[0],
            **derived,
        }
        row: dict[str, Any] = {"episode_index": index, "tasks": [task], "length": n}
        episode_stats: dict[str, dict[str, np.ndarray]] = {}
        for camera in self.cameras:
            valid, sample, place = self._video(ep, camera, start, stop)
            columns[f"image_valid.{camera}"] = valid
            row.update(place)
            key = camera_key(camera)
            self.stats[key].chunks.append(sample)
            episode_stats[key] = _stats(sample, image=True)
        self._data(columns, row)
        for key, values in columns.items():
            self.stats[key].chunks.append(values)
            episode_stats[key] = _stats(values, image=False)
        row.update(
            {
                "label": label,
                "interventions": interventions(ep, start, stop),
                "human_steps": int(human.sum()),
                "episode_id": ep.meta.episode_id,
                "station": ep.meta.station,
                "operator": ep.meta.operator,
                "policy_id": ep.meta.policy_id,
                "start_step": start,
                "recorded_start": float(recorded[0]),
            }
        )
        for key in self.features:
            for stat, value in episode_stats[key].items():
                row[f"stats/{key}/{stat}"] = value.tolist()
        row["meta/episodes/chunk_index"], row["meta/episodes/file_index"] = 0, 0
        self.rows.append(row)
        self.frames_total += n

    def _data(self, columns: dict[str, np.ndarray], row: dict[str, Any]) -> None:
        arrays = []
        names = []
        for key, ft in self.features.items():
            if ft["dtype"] == "video":
                continue
            dtype = {
                "float32": pa.float32(),
                "float64": pa.float64(),
                "int64": pa.int64(),
                "bool": pa.bool_(),
            }[ft["dtype"]]
            values = columns[key]
            arrays.append(_vectors(values, dtype) if ft["shape"] != [1] else _scalar(values, dtype))
            names.append(key)
        table = pa.Table.from_arrays(arrays, names=names)
        limit = self.layout.data_files_size_in_mb * 2**20
        if self.data_writer is not None and self.data_bytes >= limit:
            self.data_writer.close()
            self.data_writer = None
            self.data_slots.next()
        if self.data_writer is None:
            path = self.folder / DATA_PATH.format(
                chunk_index=self.data_slots.chunk, file_index=self.data_slots.file
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            self.data_writer = pq.ParquetWriter(path, table.schema, compression="snappy")
            self.data_bytes = 0
        self.data_writer.write_table(table, row_group_size=max(1, table.num_rows))
        self.data_bytes += table.nbytes
        row["data/chunk_index"], row["data/file_index"] = self.data_slots.chunk, self.data_slots.file
        row["dataset_from_index"] = self.frames_total
        row["dataset_to_index"] = self.frames_total + table.num_rows

    def _video(
        self, ep: Episode, camera: str, start: int, stop: int
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Encode the camera's picture at each step; returns per-step validity, a sample of the
        pictures for statistics, and the episode's place in the video files."""
        key = camera_key(camera)
        at, h, w = frames_at_steps(ep, camera, start, stop)
        frames = ep.cameras[camera].frames
        n = stop - start
        vf = self._video_file(key, (h, w))
        from_ts = vf.encoder.frames / self.fps
        sampled = set(np.linspace(0, n - 1, min(n, IMAGE_STATS_FRAMES)).round().astype(int).tolist())
        sample: list[np.ndarray] = []
        black = np.zeros((h, w, 3), dtype=np.uint8)
        last: tuple[int | None, np.ndarray] = (None, black)
        try:
            for k, frame in enumerate(at):
                if frame is None:
                    rgb = black
                elif frame == last[0]:
                    rgb = last[1]
                else:
                    rgb = decode_rgb(frames[frame])
                    last = (frame, rgb)
                vf.encoder.add(rgb)
                if k in sampled:
                    sample.append(rgb[::4, ::4])
        except av.FFmpegError as exc:
            raise VideoError(
                f"{vf.encoder.encoder} failed on camera {camera} of episode {ep.meta.episode_id}: "
                f"{str(exc).splitlines()[0][:160]}"
            ) from None
        valid = np.array([a is not None for a in at], dtype=bool)
        self.early.add(camera, ep.meta.episode_id, valid)
        place = {
            f"videos/{key}/chunk_index": vf.slot[0],
            f"videos/{key}/file_index": vf.slot[1],
            f"videos/{key}/from_timestamp": from_ts,
            f"videos/{key}/to_timestamp": vf.encoder.frames / self.fps,
        }
        return valid, np.stack(sample), place

    def _video_file(self, key: str, size: tuple[int, int]) -> _VideoFile:
        slots = self.video_slots.setdefault(key, _Slots(self.layout.chunks_size))
        current = self.videos.get(key)
        if current is not None and current.encoder.bytes >= self.layout.video_files_size_in_mb * 2**20:
            self._close_video(key)
            slots.next()
            current = None
        if current is None:
            path = self.folder / VIDEO_PATH.format(
                video_key=key, chunk_index=slots.chunk, file_index=slots.file
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            container = av.open(str(path), "w", format="mp4")
            encoder = StreamEncoder(container, self.settings.video, Fraction(self.fps), size)
            current = self.videos[key] = _VideoFile(container, encoder, (slots.chunk, slots.file))
        return current

    def _close_video(self, key: str) -> None:
        vf = self.videos.pop(key)
        try:
            vf.encoder.flush()
        finally:
            vf.container.close()

    # -- the end -----------------------------------------------------------------------------------

    def close(self) -> None:
        """Close every open file (after an error too)."""
        for key in list(self.videos):
            self._close_video(key)
        if self.data_writer is not None:
            self.data_writer.close()
            self.data_writer = None

    def finish(self) -> None:
        self.close()
        meta = self.folder / "meta"
        (meta / "episodes" / "chunk-000").mkdir(parents=True, exist_ok=True)
        pq.write_table(
            pa.Table.from_pylist(self.rows), self.folder / EPISODES_PATH.format(chunk_index=0, file_index=0)
        )
        tasks = pd.DataFrame(
            {"task_index": np.array(list(self.tasks.values()), dtype=np.int64)},
            index=pd.Index(list(self.tasks), name="task", dtype=object),  # Arrow "string", as LeRobot's
        )
        tasks.to_parquet(meta / "tasks.parquet")
        stats = {}
        for key, seen in self.stats.items():
            values = np.concatenate(seen.chunks) if seen.chunks else np.zeros((0, 1))
            stats[key] = {k: v.tolist() for k, v in _stats(values, seen.image).items()}
        (meta / "stats.json").write_text(json.dumps(stats, indent=4) + "\n")
        features = {key: dict(ft) for key, ft in self.features.items()}
        for camera in self.cameras:
            key = camera_key(camera)
            features[key]["info"] = self._video_info(key)
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": len(self.rows),
            "total_frames": self.frames_total,
            "total_tasks": len(self.tasks),
            "chunks_size": self.layout.chunks_size,
            "data_files_size_in_mb": self.layout.data_files_size_in_mb,
            "video_files_size_in_mb": self.layout.video_files_size_in_mb,
            "fps": self.fps,
            "splits": {"train": f"0:{len(self.rows)}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if self.cameras else None,
            "features": features,
        }
        (meta / "info.json").write_text(json.dumps(info, indent=4) + "\n")

    robot_type: str | None = None

    def _video_info(self, key: str) -> dict[str, Any]:
        """What LeRobot records of a video stream, read from the first file."""
        path = self.folder / VIDEO_PATH.format(video_key=key, chunk_index=0, file_index=0)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            params = self.settings.video.resolved()
            return {
                "video.height": stream.height,
                "video.width": stream.width,
                "video.codec": stream.codec_context.codec.canonical_name,
                "video.pix_fmt": stream.pix_fmt,
                "video.fps": self.fps,
                "video.channels": 3,
                "has_audio": False,
                "video.g": params.gop,
                "video.crf": params.crf,
                "video.preset": params.preset,
                "is_depth_map": False,
            }


def write(
    store: Store,
    chosen: Chosen,
    folder: Path,
    settings: ExportSettings | None = None,
    *,
    progress: bool = False,
    say: Callable[[str], None] = print,
    layout: Layout | None = None,
) -> int:
    """Write ``chosen`` into ``folder`` as a LeRobot v3.0 dataset; returns the number of steps."""
    settings = settings or ExportSettings()
    episodes = [store.read_episode(e.episode_id) for e in chosen.entries]
    check_uniform(episodes, "LeRobot")
    writer = _Writer(store, chosen, folder, settings, layout or Layout(), say)
    writer.plan(episodes[0], episodes)
    robots = {ep.meta.robot for ep in episodes}
    writer.robot_type = robots.pop() if len(robots) == 1 else None
    try:
        with progress_bar("exporting episodes", len(episodes), enabled=progress, unit="episodes") as advance:
            for i, (entry, ep) in enumerate(zip(chosen.entries, episodes, strict=True)):
                derived = chosen.training.steps[i] if chosen.training is not None else {}
                writer.add(i, ep, entry.start, entry.stop, label_of(entry), derived)
                advance(1)
        writer.finish()
        writer.early.report(say, "black", lambda camera: f"image_valid.{camera}")
    finally:
        writer.close()
    return writer.frames_total
