"""The per-episode write-ahead log and the thread that writes it.

One directory per attempt, ``<store>/wal/<episode_id>/``::

    steps.log          start, steps, events, own-rate samples, dropped/missed frame counts, end
    cam-<name>.log     one record per encoded camera frame (becomes the frame blob at finalize)

Both are :mod:`takeover.storage.record_log` files. Only the writer thread touches the files;
other threads hand it items through an unbounded queue (the loop thread never waits). The
writer flushes and ``fdatasync``s every log at least every ``sync_interval`` seconds, so a crash
loses at most about that much.

A write that fails (a full disk) ends the writer: it sets :attr:`WalWriter.failed` at once with
a one-line :attr:`WalWriter.failure`, which the recorder reports to the control loop as a reason
to hold the robot; what reached the disk stays recoverable.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from takeover.recorder.disk import DOCTOR_HINT, disk_full, full_disk_line
from takeover.recorder.records import EpisodeEnd, EpisodeStart, StepRecord
from takeover.storage.codec import pack
from takeover.storage.errors import StorageError
from takeover.storage.record_log import (
    KIND_DROPPED,
    KIND_END,
    KIND_EVENT,
    KIND_MISSED,
    KIND_SAMPLE,
    KIND_START,
    KIND_STEP,
    LogWriter,
)
from takeover.storage.schema import Event

log = logging.getLogger(__name__)

STEPS_LOG = "steps.log"
CAMERA_PREFIX = "cam-"


def camera_log_name(camera: str) -> str:
    return f"{CAMERA_PREFIX}{camera}.log"


@dataclass(frozen=True)
class Frame:
    """An encoded frame on its way to the log. ``step`` is -1 when only its time places it."""

    camera: str
    t: float
    step: int
    height: int
    width: int
    jpeg: bytes


@dataclass(frozen=True)
class Sample:
    stream: str
    t: float
    value: np.ndarray


@dataclass
class CameraIndex:
    """Where each frame of one camera log is, kept by the writer so finalize need not re-read it."""

    path: Path
    digest: str = ""
    offsets: list[int] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    height: int = 0
    width: int = 0


@dataclass
class WalContents:
    start: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    samples: dict[str, tuple[list[float], list[np.ndarray]]] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    """Frames the encoders could not keep up with, per camera."""
    missed: dict[str, int] = field(default_factory=dict)
    """Frames free-running cameras did not deliver while they were down, per camera."""
    end: dict[str, Any] | None = None
    cameras: dict[str, CameraIndex] = field(default_factory=dict)
    torn: list[str] = field(default_factory=list)
    """Logs whose tail was torn (and cut off)."""

    @property
    def last_t(self) -> float:
        """Monotonic time of the last durable record (steps, events, samples, frames)."""
        times = [s["t"] for s in self.steps[-1:]] + [e.t for e in self.events[-1:]]
        times += [max(c.times) for c in self.cameras.values() if c.times]
        times += [ts[-1] for ts, _ in self.samples.values() if ts]
        return max(times) if times else float(self.start["mono"]) if self.start else 0.0

    def wall_time(self, mono: float) -> float:
        assert self.start is not None
        return float(self.start["started_at"]) + (mono - float(self.start["mono"]))


def step_fields(s: StepRecord) -> dict[str, Any]:
    """A step as the log keeps it; ``st`` (the station's own time) and ``ck`` (the clock estimate
    that rebased it) only for a station with a clock of its own."""
    out = {
        "i": s.index,
        "t": s.t,
        "s": np.asarray(s.state),
        "a": np.asarray(s.action),
        "p": np.asarray(s.proposed_action),
        "c": int(s.control_source),
        "ok": bool(s.success),
        "pe": s.period_error,
    }
    if s.station_t is not None and s.clock is not None:
        out["st"] = float(s.station_t)
        out["ck"] = s.clock.as_dict()
    return out


def event_payload(e: Event) -> bytes:
    return pack({"kind": str(e.kind.value), "step": e.step, "t": e.t, "reason": e.reason})


LOCK_FILE = "writer.lock"
"""Held (flock) by the live writer of a log, in whatever process, until the attempt is stored."""


def log_in_use(directory: Path) -> bool:
    """True while a live writer holds the log's lock: recovery must leave such a log alone."""
    try:
        fd = os.open(directory / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the lock if this call took it
    return False


class RecordingError(StorageError):
    """The write-ahead log could not be written (the message says where and what to do)."""


_COUNTS = {"dropped": KIND_DROPPED, "missed": KIND_MISSED}
"""Per-camera frame counts kept in the log, and their record kinds."""


class WalWriter:
    """Owns the log files of one attempt. :meth:`start` creates them; :meth:`close` drains, syncs
    and returns what was written, kept in memory as well, so finalize need not read it back."""

    def __init__(self, directory: Path, sync_interval: float = 0.25) -> None:
        self.directory = directory
        self.sync_interval = sync_interval
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._steps: LogWriter | None = None
        self._cams: dict[str, LogWriter] = {}
        self.contents = WalContents()
        self.cameras = self.contents.cameras
        self._counts: dict[str, dict[str, int]] = {name: {} for name in _COUNTS}
        self._counts_written: dict[str, dict[str, int]] = {name: {} for name in _COUNTS}
        self.error: BaseException | None = None
        self.failure = ""
        """Why the log cannot be written ('' while it can); one line for a person."""
        self.failed = threading.Event()
        self.failed_at: float | None = None
        """Monotonic time the writer failed."""
        self._lock_fd: int | None = None

    def start(self, start: EpisodeStart) -> None:
        """Create the log and start its writer. A log that cannot be created (a full disk) is
        failed at once (:attr:`failed`), not raised: the attempt is held and ended like any other
        that cannot be recorded."""
        try:
            self.directory.mkdir(parents=True, exist_ok=False)
            self._lock_fd = os.open(self.directory / LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o644)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self._steps = LogWriter(self.directory / STEPS_LOG).open()
            self.contents.start = {**asdict(start), "mono": time.monotonic()}
            self._steps.append(KIND_START, pack(self.contents.start))
            self._steps.sync()
        except OSError as exc:
            if self._steps is not None:
                with contextlib.suppress(OSError):
                    self._steps.close()
            self._fail(exc)
            return
        self._thread = threading.Thread(target=self._run, name="recorder-wal", daemon=True)
        self._thread.start()

    # -- called from any thread ------------------------------------------------------------
    def put(self, item: StepRecord | Event | Frame | Sample) -> None:
        self._q.put(item)

    def set_counts(self, name: str, counts: dict[str, int]) -> None:
        """Per-camera frame counts so far (``name``: 'dropped' or 'missed'), written at the next sync."""
        self._q.put(("counts", name, dict(counts)))

    def close(
        self, end: EpisodeEnd | None, dropped: dict[str, int], missed: dict[str, int] | None = None
    ) -> WalContents:
        """Write the final counts and the end record (None: none, e.g. a discarded attempt), drain,
        sync and close. Raises :class:`RecordingError` if the log could not be written."""
        self._q.put(("end", end, {"dropped": dict(dropped), "missed": dict(missed or {})}))
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.error is not None:
            raise RecordingError(self.failure)
        return self.contents

    def release(self) -> None:
        """Give up the log's lock (after the attempt is stored or removed; a crash releases it too)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- the writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        except OSError as exc:  # a full disk, an I/O error: said once, in one line
            self._fail(exc)
        except BaseException as exc:  # a bug: with its traceback; the loop thread must not die of it
            log.exception("write-ahead log writer failed")
            self._fail(exc)
        finally:
            for w in [self._steps, *self._cams.values()]:
                if w is not None:
                    try:
                        w.close()
                    except OSError as exc:
                        if self.error is None:
                            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if disk_full(exc):
            self.failure = full_disk_line(self.directory, "recording", DOCTOR_HINT)
        else:
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            why = detail or type(exc).__name__
            self.failure = f"cannot write the recording to {self.directory}: {why}; then {DOCTOR_HINT}"
        self.error = exc
        self.failed_at = time.monotonic()
        self.failed.set()
        log.error("%s", self.failure)

    def _loop(self) -> None:
        assert self._steps is not None
        steps = self._steps
        c = self.contents
        next_sync = time.monotonic() + self.sync_interval
        while True:
            timeout = max(0.0, next_sync - time.monotonic())
            try:
                item = self._q.get(timeout=timeout)
            except queue.Empty:
                item = None
            if isinstance(item, Frame):
                self._write_frame(item)
            elif isinstance(item, StepRecord):
                fields = step_fields(item)
                steps.append(KIND_STEP, pack(fields))
                c.steps.append(fields)
            elif isinstance(item, Event):
                steps.append(KIND_EVENT, event_payload(item))
                c.events.append(item)
            elif isinstance(item, Sample):
                value = np.asarray(item.value)
                steps.append(KIND_SAMPLE, pack({"n": item.stream, "t": item.t, "v": value}))
                ts, vs = c.samples.setdefault(item.stream, ([], []))
                ts.append(item.t)
                vs.append(value)
            elif isinstance(item, tuple) and item[0] == "counts":
                self._counts[item[1]] = item[2]
            elif isinstance(item, tuple) and item[0] == "end":
                _, end, counts = item
                self._counts.update(counts)
                c.dropped, c.missed = counts["dropped"], counts["missed"]
                self._write_counts()
                if end is not None:
                    c.end = asdict(end)
                    steps.append(KIND_END, pack(c.end))
                self._sync_all()
                for name, w in self._cams.items():
                    self.cameras[name].digest = w.digest()
                return
            if time.monotonic() >= next_sync:
                self._write_counts()
                self._sync_all()
                next_sync = time.monotonic() + self.sync_interval

    def _write_frame(self, fr: Frame) -> None:
        w = self._cams.get(fr.camera)
        if w is None:
            path = self.directory / camera_log_name(fr.camera)
            w = self._cams[fr.camera] = LogWriter(path).open()
            self.cameras[fr.camera] = CameraIndex(path, height=fr.height, width=fr.width)
        offset = w.append_frame(fr.t, fr.step, fr.height, fr.width, fr.jpeg)
        idx = self.cameras[fr.camera]
        idx.offsets.append(offset)
        idx.lengths.append(len(fr.jpeg))
        idx.times.append(fr.t)
        idx.steps.append(fr.step)

    def _write_counts(self) -> None:
        if self._steps is None:
            return
        for name, kind in _COUNTS.items():
            counts = self._counts[name]
            if counts != self._counts_written[name]:
                self._steps.append(kind, pack(counts))
                self._counts_written[name] = dict(counts)

    def _sync_all(self) -> None:
        for w in [*self._cams.values(), self._steps]:
            if w is not None:
                w.sync()
