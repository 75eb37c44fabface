"""The episode recorder: observes the control loop and writes each attempt ahead to disk.

While an attempt runs, every step, event and own-rate sample goes to a per-episode write-ahead
log (:mod:`takeover.recorder.wal`) that a writer thread makes durable several times a second.
Camera frames (from the station's observations, or from free-running cameras through
:meth:`EpisodeRecorder.on_frame`) are JPEG-encoded by background workers fed through a bounded
queue, each frame keeping the time it was captured; a frame that does not fit in the queue is
counted as dropped for its camera, stored with the episode and shown live, never silently lost.

Free-running cameras also report their health (:meth:`EpisodeRecorder.on_camera_health`): a
camera that goes down or comes back during an attempt becomes a camera event, and the frames it
missed while down are counted and stored with the episode.

At the end of an attempt the log already holds everything, encoded: finalize indexes it, adopts
each camera log as the episode's frame blob (no copy, no re-encode), writes the small episode
file and catalogs it, then removes the log. A crash at any point leaves a log that
:func:`takeover.recorder.recovery.recover_all` turns into a complete or recovered episode.

The recorder guards attempts (:class:`~takeover.recorder.records.GuardsAttempts`): it refuses
to start one that the disk cannot hold, and asks the loop to hold the robot and end the attempt
as soon as its log cannot be written.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from takeover.recorder.camera_health import CameraBook
from takeover.recorder.capture import CameraHealth
from takeover.recorder.disk import (
    DOCTOR_HINT,
    SpaceEstimate,
    disk_full,
    estimate_attempt,
    full_disk_line,
    jpeg_bytes_per_pixel,
    space_refusal,
)
from takeover.recorder.encoder_process import EncoderError, EncoderProcess
from takeover.recorder.records import AttemptPlan, EpisodeEnd, EpisodeStart, StepRecord
from takeover.recorder.recovery import remove_log, store_log
from takeover.recorder.settings import RecorderConfig
from takeover.recorder.wal import Frame, RecordingError, Sample, WalWriter
from takeover.recorder.wal_reader import STATION_IMAGE_TIME
from takeover.storage.errors import StorageError
from takeover.storage.schema import Event
from takeover.storage.store import Store

log = logging.getLogger(__name__)


_FrameJob = tuple[str, np.ndarray, float, int]
"""Camera name, RGB image, capture time, step index (-1: placed by time); None stops a worker."""


class EpisodeRecorder:
    """A :class:`~takeover.recorder.records.LoopObserver` that records attempts into a store, and
    :class:`~takeover.recorder.records.GuardsAttempts`."""

    def __init__(self, store: Store, config: RecorderConfig | None = None) -> None:
        self.store = store
        self.config = config or RecorderConfig()
        self._lock = threading.Lock()
        self._start: EpisodeStart | None = None
        self._wal: WalWriter | None = None
        self._queue: queue.Queue[_FrameJob | None] = queue.Queue(maxsize=self.config.queue_frames)
        self._workers: list[threading.Thread] = []
        self._encoder: EncoderProcess | None = None
        """The encoder process (``encoder = "process"``): started with the first attempt, kept."""
        self._closer: weakref.finalize[Any, Any] | None = None
        self._dropped: dict[str, int] = {}
        self._encode_params = [int(cv2.IMWRITE_JPEG_QUALITY), self.config.jpeg_quality]
        self.cameras = CameraBook()
        """Health of the free-running cameras (live), frames they missed in the attempt."""
        self._station_shapes: dict[str, tuple[int, int]] = {}
        self._frame_bytes: dict[str, float] = {}
        """Average encoded size of a frame, per camera (for the disk space estimate)."""
        self.saved: list[str] = []
        """Ids of the episodes written so far, in order."""
        self.last_finalize_s = 0.0
        """Seconds from the end of the last attempt until it was complete in storage."""
        self.last_failure = ""
        """Why the last attempt could not be stored ('' if it was)."""
        self.last_failure_at: float | None = None
        """Monotonic time its write-ahead log failed, if it did."""

    # -- LoopObserver -------------------------------------------------------------------
    def on_episode_start(self, start: EpisodeStart) -> None:
        if self._start is not None:
            raise RuntimeError(f"episode {start.episode_id}: {self._start.episode_id} is still recording")
        wal = WalWriter(self.store.wal_dir / start.episode_id, self.config.sync_interval_s)
        wal.start(start)  # first: the log pairs the start's wall time with the monotonic time now
        if self.config.encoder == "process":
            try:
                encoder = self.prepare()
            except RecordingError:
                wal.close(None, {}, {})
                remove_log(wal.directory)
                wal.release()
                raise
            encoder.begin(self._writer(wal), self._count_drop)
        else:
            self._queue = queue.Queue(maxsize=self.config.queue_frames)
            self._workers = [
                threading.Thread(
                    target=self._encode_loop, args=(wal,), name=f"recorder-encode-{i}", daemon=True
                )
                for i in range(self.config.encode_workers)
            ]
            for w in self._workers:
                w.start()
        with self._lock:
            self._dropped = {}
            self._wal = wal
            self._start = start
        self.last_failure, self.last_failure_at = "", None
        for event in self.cameras.begin():
            wal.put(event)

    def on_step(self, step: StepRecord) -> None:
        wal = self._wal
        if wal is None:
            raise RuntimeError("on_step before on_episode_start")
        wal.put(step)
        for name, value in step.extras.items():
            self.record_sample(f"policy.{name}", step.t, value)
        for name, image in step.images.items():
            if name not in self._station_shapes:
                self._station_shapes[name] = (int(image.shape[0]), int(image.shape[1]))
            # A frame rendered off the loop shows an earlier step: its time places it there.
            index = -1 if name in step.rendered_earlier else step.index
            self._enqueue(name, image, step.image_times.get(name, step.t), index)
        for name, raw in step.station_image_times.items():
            if name in step.image_times:
                wal.put(Sample(f"{STATION_IMAGE_TIME}{name}", step.image_times[name], np.asarray(raw)))

    def on_event(self, event: Event) -> None:
        if self._wal is not None:
            self._wal.put(event)

    def on_episode_end(self, end: EpisodeEnd) -> None:
        t0 = time.monotonic()
        start, wal = self._start, self._wal
        if start is None or wal is None:
            raise RuntimeError("on_episode_end before on_episode_start")
        with self._lock:
            self._wal = None  # from here on no frame enters the queue (see _enqueue)
        for _ in self._workers:
            self._queue.put(None)
        for w in self._workers:
            w.join()
        self._workers = []
        if self._encoder is not None:
            self._encoder.finish()  # every frame taken is in the log, or counted dropped
        missed = self.cameras.end()
        with self._lock:
            dropped = dict(self._dropped)  # encode failures counted while draining
        self._start = None
        try:
            contents = wal.close(None if end.discard else end, dropped, missed)
            if end.discard:
                remove_log(wal.directory)
                log.info("episode %s discarded", start.episode_id)
            else:
                outcome = store_log(self.store, wal.directory, contents)
                if outcome.action in ("finalized", "recovered"):
                    self.saved.append(start.episode_id)
                log.info("%s", outcome.line())
        except (RecordingError, StorageError, OSError) as exc:
            if end.discard:  # nothing of it was to be kept anyway
                with contextlib.suppress(OSError):
                    remove_log(wal.directory)
                return
            # What reached the disk stays in the log, for recovery once the cause is fixed.
            if isinstance(exc, RecordingError):
                why = str(exc)
            elif disk_full(exc):
                why = full_disk_line(self.store.root, "finalize", DOCTOR_HINT)
            else:
                why = f"{exc}; its log is kept: fix that, then {DOCTOR_HINT}"
            self.last_failure = f"episode {start.episode_id} not saved: {why}"
            self.last_failure_at = wal.failed_at
            if not isinstance(exc, RecordingError):  # the log's writer said so when it failed
                log.error("%s", self.last_failure)
        finally:
            wal.release()
            self.last_finalize_s = time.monotonic() - t0

    def prepare(self) -> EncoderProcess:
        """Start the encoder process now (else the first attempt starts it, and waits for it, about
        0.3 s); again if the last one died. RecordingError if it cannot start."""
        encoder = self._encoder
        if encoder is not None and encoder.alive:
            return encoder
        if encoder is not None:
            encoder.close()
        encoder = EncoderProcess(self.config.jpeg_quality, self.config.queue_frames)
        try:
            encoder.start()
        except (EncoderError, OSError) as exc:
            self._encoder = None
            raise RecordingError(f"cannot record camera frames: {exc}") from None
        self._encoder = encoder
        self._closer = weakref.finalize(self, encoder.close)  # a recorder nobody closed
        return encoder

    @property
    def encoder_pid(self) -> int | None:
        """The encoder process's id, once an attempt has started it (for diagnostics)."""
        return self._encoder.pid if self._encoder is not None else None

    def close(self) -> None:
        """Stop the encoder process (it is started with the first attempt and kept for the next)."""
        encoder, self._encoder = self._encoder, None
        if encoder is not None:
            encoder.close()

    # -- GuardsAttempts -----------------------------------------------------------------
    def start_refusal(self, plan: AttemptPlan) -> str:
        """Refuse an attempt the disk may not hold (``[recorder] disk_margin`` times its estimate)."""
        margin = self.config.disk_margin
        if margin <= 0:
            return ""
        return space_refusal(self.store.wal_dir, self._estimate(plan), margin)

    def bytes_per_second(self, plan: AttemptPlan) -> float:
        """About how fast an attempt like ``plan`` fills the disk (frame sizes as measured so far)."""
        return self._estimate(plan).bytes * plan.rate_hz / plan.max_steps

    def _estimate(self, plan: AttemptPlan) -> SpaceEstimate:
        return estimate_attempt(
            plan,
            self._station_shapes,
            self.cameras.specs(),
            self._frame_bytes,
            jpeg_bytes_per_pixel(self.config.jpeg_quality),
        )

    def halt_reason(self) -> str:
        """Why the running attempt must stop now: its log cannot be written."""
        wal = self._wal
        if wal is not None and wal.failed.is_set():
            return wal.failure
        encoder = self._encoder
        if wal is not None and encoder is not None and encoder.failure:
            return f"camera frames cannot be recorded: {encoder.failure}"
        return ""

    # -- other inputs (any thread) ------------------------------------------------------
    def on_frame(self, camera: str, image: np.ndarray, t: float) -> bool:
        """A frame from a free-running camera, captured at monotonic time ``t``; kept only while an
        attempt records (returns whether it is this attempt's). Never blocks: a full encode queue
        counts the frame as dropped."""
        return self._enqueue(camera, image, t, -1)

    def on_camera_health(self, health: CameraHealth) -> None:
        """A free-running camera's health report (any thread): kept for the console; a change of
        state during an attempt is recorded as a camera event."""
        event = self.cameras.report(health)
        wal = self._wal
        if event is not None and wal is not None:
            wal.put(event)
            wal.set_counts("missed", self.cameras.missed_frames())

    def record_sample(self, stream: str, t: float, value: np.ndarray) -> None:
        """A sample of a low-dimensional stream with its own rate (stored as a timed stream)."""
        wal = self._wal
        if wal is not None:
            wal.put(Sample(stream, t, np.asarray(value)))

    def dropped_frames(self) -> dict[str, int]:
        """Frames dropped so far in the current (or last) attempt, per camera."""
        with self._lock:
            return dict(self._dropped)

    def missed_frames(self) -> dict[str, int]:
        """Frames the free-running cameras missed while down in the current (or last) attempt."""
        return self.cameras.missed_frames()

    def camera_health(self) -> dict[str, str]:
        """Free-running camera -> 'ok' or what is wrong with it, now."""
        return self.cameras.summary()

    @property
    def recording(self) -> bool:
        return self._wal is not None

    # -- internals ----------------------------------------------------------------------
    def _enqueue(self, name: str, image: np.ndarray, t: float, step: int) -> bool:
        """Queue a frame for the encoders (or count it dropped) while an attempt records; False
        between attempts. Checked and queued under the lock that ends the attempt, so no frame is
        ever queued behind the workers' stop sentinels, uncounted."""
        with self._lock:
            wal = self._wal
            if wal is None:
                return False
            encoder = self._encoder
            if encoder is not None:
                if encoder.offer(name, image, t, step):
                    return True
                self._dropped[name] = self._dropped.get(name, 0) + 1
                dropped = dict(self._dropped)
            else:
                try:
                    self._queue.put_nowait((name, image, t, step))
                    return True
                except queue.Full:
                    self._dropped[name] = self._dropped.get(name, 0) + 1
                    dropped = dict(self._dropped)
        wal.set_counts("dropped", dropped)
        return True

    def _count_drop(self, name: str) -> None:
        with self._lock:
            self._dropped[name] = self._dropped.get(name, 0) + 1
            dropped, wal = dict(self._dropped), self._wal
        if wal is not None:
            wal.set_counts("dropped", dropped)

    def _writer(self, wal: WalWriter) -> Callable[[str, float, int, int, int, bytes], None]:
        """Where the encoder process's frames go: the attempt's log (on its reader thread)."""

        def written(name: str, t: float, step: int, height: int, width: int, jpeg: bytes) -> None:
            self._note_size(name, len(jpeg))
            wal.put(Frame(name, t, step, height, width, jpeg))

        return written

    def _note_size(self, name: str, size: int) -> None:
        average = self._frame_bytes.get(name)
        self._frame_bytes[name] = size if average is None else 0.95 * average + 0.05 * size

    def _encode_loop(self, wal: WalWriter) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            name, image, t, step = item
            try:
                ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), self._encode_params)
            except cv2.error:
                log.exception("camera %s: frame could not be encoded", name)
                ok = False
            if not ok:
                self._count_drop(name)
                continue
            jpeg = buf.tobytes()
            self._note_size(name, len(jpeg))
            wal.put(Frame(name, t, step, int(image.shape[0]), int(image.shape[1]), jpeg))
