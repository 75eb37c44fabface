"""One episode in one HDF5 file: write it, read it back, or read single steps lazily.

Layout (all at the file root)::

    attrs: format="takeover.episode", schema_version, meta (JSON of EpisodeMeta), num_steps
    timestamps (T,) float64      state (T, S) float32        action (T, A) float32
    proposed_action (T, A) float32                           control_source (T,) uint8
    events/   kind (E,) str, step (E,) int64, t (E,) float64, reason (E,) str
    cameras/<name>/  frames (F,) vlen uint8 (JPEG bytes), timestamps (F,) float64,
                     step_index (F,) int64; attrs height, width, dropped
                     or, with the frames in a separate blob (schema 2): attr frames_blob (sha256),
                     frame_offset (F,) int64, frame_length (F,) int64 instead of frames
    streams/<name>/  timestamps (N,) float64, values (N, ...)   (schema 2; own-rate streams)

An episode file is read from a path or from an open binary file (a blob store's object); the
frame blobs it names are read by digest, range by range, from the blob store the reader is given
(``blobs``): a reader never knows where or how the bytes are stored.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import h5py
import numpy as np

from takeover.storage.blobs import BlobReader
from takeover.storage.errors import EpisodeFileError
from takeover.storage.schema import (
    SCHEMA_VERSION,
    CameraStream,
    Episode,
    EpisodeMeta,
    Event,
    EventKind,
    FrameBlob,
    TimedStream,
)

FILE_FORMAT = "takeover.episode"
_STR = h5py.string_dtype("utf-8")
_BYTES = h5py.vlen_dtype(np.dtype(np.uint8))


def _check_camera_name(name: str) -> None:
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"camera name {name!r} cannot name an HDF5 group")


Source = Path | str | BinaryIO
"""An episode file: its path, or the file opened for binary reading (e.g. a blob store's object)."""


def _name(src: Source) -> str:
    return str(src) if isinstance(src, Path | str) else str(getattr(src, "name", "an episode file"))


def write_episode(ep: Episode, path: Path | str) -> None:
    """Validate ``ep`` and write it to a new HDF5 file at ``path`` (overwriting)."""
    ep.validate()
    meta_json = json.dumps(asdict(ep.meta), sort_keys=True, allow_nan=False)
    # locking=False: the store's temporary files are locked by their writer (storage.tempfiles).
    with h5py.File(path, "w", track_order=False, locking=False) as f:
        f.attrs["format"] = FILE_FORMAT
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["num_steps"] = ep.num_steps
        f.attrs["meta"] = meta_json
        f.create_dataset("timestamps", data=np.asarray(ep.timestamps, dtype=np.float64))
        f.create_dataset("state", data=np.asarray(ep.state, dtype=np.float32))
        f.create_dataset("action", data=np.asarray(ep.action, dtype=np.float32))
        f.create_dataset("proposed_action", data=np.asarray(ep.proposed_action, dtype=np.float32))
        f.create_dataset("control_source", data=np.asarray(ep.control_source, dtype=np.uint8))
        ev = f.create_group("events")
        ev.create_dataset("kind", data=[str(e.kind.value) for e in ep.events], dtype=_STR)
        ev.create_dataset("step", data=np.array([e.step for e in ep.events], dtype=np.int64))
        ev.create_dataset("t", data=np.array([e.t for e in ep.events], dtype=np.float64))
        ev.create_dataset("reason", data=[e.reason for e in ep.events], dtype=_STR)
        cams = f.create_group("cameras")
        for name in sorted(ep.cameras):
            cam = ep.cameras[name]
            _check_camera_name(name)
            g = cams.create_group(name)
            if isinstance(cam.frames, FrameBlob):
                g.attrs["frames_blob"] = cam.frames.digest
                g.create_dataset("frame_offset", data=np.asarray(cam.frames.offsets, dtype=np.int64))
                g.create_dataset("frame_length", data=np.asarray(cam.frames.lengths, dtype=np.int64))
            else:
                frames = np.empty(len(cam.frames), dtype=object)
                for i, frame in enumerate(cam.frames):
                    frames[i] = np.frombuffer(frame, dtype=np.uint8)
                g.create_dataset("frames", shape=(len(cam.frames),), dtype=_BYTES, data=frames)
            g.create_dataset("timestamps", data=np.asarray(cam.timestamps, dtype=np.float64))
            g.create_dataset("step_index", data=np.asarray(cam.step_index, dtype=np.int64))
            g.attrs["height"] = int(cam.height)
            g.attrs["width"] = int(cam.width)
            g.attrs["dropped"] = int(cam.dropped)
        streams = f.create_group("streams")
        for name in sorted(ep.streams):
            _check_camera_name(name)
            st = ep.streams[name]
            g = streams.create_group(name)
            g.create_dataset("timestamps", data=np.asarray(st.timestamps, dtype=np.float64))
            g.create_dataset("values", data=np.asarray(st.values))


def _open(src: Source) -> h5py.File:
    path = _name(src)
    try:
        f = h5py.File(src, "r")
    except FileNotFoundError:
        raise EpisodeFileError(f"episode file {path} does not exist") from None
    except OSError as exc:
        raise EpisodeFileError(f"{path} is not a readable HDF5 episode file: {exc}") from None
    if f.attrs.get("format") != FILE_FORMAT:
        f.close()
        raise EpisodeFileError(f"{path} is not a takeover episode file")
    version = int(f.attrs["schema_version"])
    if version > SCHEMA_VERSION:
        f.close()
        raise EpisodeFileError(
            f"{path} has episode schema {version}; this version of takeover reads up to {SCHEMA_VERSION}"
        )
    return f


def _meta(f: h5py.File) -> EpisodeMeta:
    stored: dict[str, Any] = json.loads(f.attrs["meta"])
    return EpisodeMeta.from_stored(stored)


def _str_list(ds: h5py.Dataset) -> list[str]:
    return [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in ds[()]]


@dataclass(frozen=True)
class EpisodeHeader:
    meta: EpisodeMeta
    num_steps: int
    cameras: dict[str, tuple[int, int]]
    """Camera name -> (height, width)."""
    frame_blobs: tuple[str, ...] = ()
    """Digests of the separate frame blobs this episode needs (schema 2)."""
    camera_blobs: dict[str, str] = field(default_factory=dict)
    """Camera name -> the frame blob that holds its frames (cameras with inline frames: absent)."""


def read_header(path: Source) -> EpisodeHeader:
    """Metadata, number of steps and cameras, without reading the streams."""
    with _open(path) as f:
        cams = {name: (int(g.attrs["height"]), int(g.attrs["width"])) for name, g in f["cameras"].items()}
        by_camera = {name: str(g.attrs["frames_blob"]) for name, g in f["cameras"].items() if _external(g)}
        blobs = tuple(sorted(set(by_camera.values())))
        return EpisodeHeader(_meta(f), int(f.attrs["num_steps"]), cams, blobs, by_camera)


def _external(g: h5py.Group) -> bool:
    return "frames_blob" in g.attrs


def _frames(g: h5py.Group, path: Source, blobs: BlobReader | None) -> Sequence[bytes]:
    if _external(g):
        digest = str(g.attrs["frames_blob"])
        if blobs is None:
            raise EpisodeFileError(
                f"{_name(path)} keeps its camera frames in blob {digest[:12]}: read it with its blob store"
            )
        return FrameBlob(blobs, digest, g["frame_offset"][()], g["frame_length"][()])
    return [bytes(fr.tobytes()) for fr in g["frames"][()]]


def _events(f: h5py.File) -> list[Event]:
    ev = f["events"]
    return [
        Event(kind=EventKind(k), step=int(s), t=float(t), reason=r)
        for k, s, t, r in zip(
            _str_list(ev["kind"]), ev["step"][()], ev["t"][()], _str_list(ev["reason"]), strict=True
        )
    ]


@dataclass(frozen=True)
class Timeline:
    """An episode's steps, events and the step of every camera frame, without the data."""

    num_steps: int
    events: list[Event]
    frame_steps: dict[str, np.ndarray]
    """Camera name -> step index of each of its frames (int64)."""


def read_timeline(path: Source) -> Timeline:
    """Steps, events and frame steps of the episode file at ``path`` (no frames, no streams)."""
    with _open(path) as f:
        steps = {name: g["step_index"][()] for name, g in f["cameras"].items()}
        return Timeline(int(f.attrs["num_steps"]), _events(f), steps)


def read_episode(path: Source, blobs: BlobReader | None = None) -> Episode:
    """The whole episode; frames kept in a separate blob are read lazily from ``blobs``."""
    with _open(path) as f:
        events = _events(f)
        cameras: dict[str, CameraStream] = {}
        for name, g in f["cameras"].items():
            cameras[name] = CameraStream(
                name=name,
                frames=_frames(g, path, blobs),
                timestamps=g["timestamps"][()],
                step_index=g["step_index"][()],
                height=int(g.attrs["height"]),
                width=int(g.attrs["width"]),
                dropped=int(g.attrs["dropped"]),
            )
        return Episode(
            meta=_meta(f),
            timestamps=f["timestamps"][()],
            state=f["state"][()],
            action=f["action"][()],
            proposed_action=f["proposed_action"][()],
            control_source=f["control_source"][()],
            events=events,
            cameras=cameras,
            streams={
                name: TimedStream(g["timestamps"][()], g["values"][()])
                for name, g in f.get("streams", {}).items()
            },
        )


class _CameraIndex:
    def __init__(self, g: h5py.Group, episode_path: Path, blobs: BlobReader | None) -> None:
        steps = g["step_index"][()]
        stamps = g["timestamps"][()]
        # Order by step, then capture time, so the last frame at or before a step is found by bisection.
        self.order = np.lexsort((stamps, steps))
        self.sorted_steps = steps[self.order]
        self.blob: FrameBlob | None = None
        if _external(g):
            blob = _frames(g, episode_path, blobs)
            assert isinstance(blob, FrameBlob)
            self.blob = blob
        else:
            self.frames = g["frames"]
        self.height = int(g.attrs["height"])
        self.width = int(g.attrs["width"])


class EpisodeReader:
    """Random access to one episode file, safe to share with DataLoader worker processes.

    Nothing is opened in ``__init__``; the file is opened on first access in each process (a
    handle inherited through ``fork`` is dropped and reopened). Low-dimensional streams are read
    whole on first access; camera frames are read one at a time.
    """

    def __init__(self, path: Path | str, blobs: BlobReader | None = None) -> None:
        self._reset(Path(path), blobs)

    def _reset(self, path: Path, blobs: BlobReader | None = None) -> None:
        self.path = path
        self.blobs = blobs
        self._file: h5py.File | None = None
        self._pid = -1
        self._arrays: dict[str, np.ndarray] = {}
        self._cameras: dict[str, _CameraIndex] = {}

    def _ensure_open(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            self._file = None  # an inherited handle belongs to the parent process
            f = _open(self.path)
            self._arrays = {
                name: f[name][()]
                for name in ("timestamps", "state", "action", "proposed_action", "control_source")
            }
            self._cameras = {name: _CameraIndex(g, self.path, self.blobs) for name, g in f["cameras"].items()}
            self._file, self._pid = f, os.getpid()
        return self._file

    @property
    def is_open(self) -> bool:
        return self._file is not None and self._pid == os.getpid()

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None
        self._arrays, self._cameras = {}, {}

    def __enter__(self) -> EpisodeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        # For DataLoader workers started with spawn/forkserver: send the path, never a handle.
        return {"path": self.path, "blobs": self.blobs}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._reset(Path(state["path"]), state.get("blobs"))

    @property
    def num_steps(self) -> int:
        self._ensure_open()
        return int(self._arrays["timestamps"].shape[0])

    def array(self, name: str) -> np.ndarray:
        """A whole low-dimensional stream (timestamps, state, action, proposed_action, control_source)."""
        self._ensure_open()
        return self._arrays[name]

    @property
    def camera_names(self) -> list[str]:
        self._ensure_open()
        return sorted(self._cameras)

    def camera_shape(self, camera: str) -> tuple[int, int]:
        self._ensure_open()
        c = self._cameras[camera]
        return c.height, c.width

    def frame_index(self, camera: str, step: int) -> int | None:
        """The number of the latest frame of ``camera`` captured at or before ``step`` (None if
        there is none yet)."""
        self._ensure_open()
        c = self._cameras[camera]
        pos = int(np.searchsorted(c.sorted_steps, step, side="right")) - 1
        return None if pos < 0 else int(c.order[pos])

    def frame(self, camera: str, index: int) -> bytes:
        """JPEG bytes of frame number ``index`` of ``camera``."""
        self._ensure_open()
        c = self._cameras[camera]
        if c.blob is not None:
            return c.blob[index]
        return bytes(c.frames[index].tobytes())

    def frame_at(self, camera: str, step: int) -> bytes | None:
        """JPEG bytes of the latest frame captured at or before ``step`` (None if there is none yet)."""
        i = self.frame_index(camera, step)
        return None if i is None else self.frame(camera, i)
