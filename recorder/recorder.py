"""The episode recorder: observes the control loop and writes each attempt ahead to disk.

While an attempt runs, every step, event and own-rate sample goes to a per-episode write-ahead
log (:mod:`takeover.recorder.wal`) that a writer thread makes durable several times a second.
Camera frames (from the station's observations, or from free-running cameras through
:meth:`EpisodeRecorder.on_frame`) are JPEG-encoded by background workers fed through a bounded
queue, each frame keeping the time it was captured; a frame that does not fit in the queue is
counted as dropped for its camera, stored with the episode and shown live, never silently lost.

At the end of an attempt the log already holds everything, encoded: finalize indexes it, adopts
each camera log as the episode's frame blob (no copy, no re-encode), writes the small episode
file and catalogs it, then removes the log. A crash at any point leaves a log that
:func:`takeover.recorder.recovery.recover_all` turns into a complete or recovered episode.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

import cv2
import numpy as np

from takeover.recorder.records import EpisodeEnd, EpisodeStart, StepRecord
from takeover.recorder.recovery import remove_log, store_log
from takeover.recorder.settings import RecorderConfig
from takeover.recorder.wal import Frame, Sample, WalWriter
from takeover.storage.schema import Event
from takeover.storage.store import Store

log = logging.getLogger(__name__)


_FrameJob = tuple[str, np.ndarray, float, int]
"""Camera name, RGB image, capture time, step index (-1: placed by time); None stops a worker."""


class EpisodeRecorder:
    """A :class:`~takeover.recorder.records.LoopObserver` that records attempts into a store."""

    def __init__(self, store: Store, config: RecorderConfig | None = None) -> None:
        self.store = store
        self.config = config or RecorderConfig()
        self._lock = threading.Lock()
        self._start: EpisodeStart | None = None
        self._wal: WalWriter | None = None
        self._queue: queue.Queue[_FrameJob | None] = queue.Queue(maxsize=self.config.queue_frames)
        self._workers: list[threading.Thread] = []
        self._dropped: dict[str, int] = {}
        self._encode_params = [int(cv2.IMWRITE_JPEG_QUALITY), self.config.jpeg_quality]
        self.saved: list[str] = []
        """Ids of the episodes written so far, in order."""
        self.last_finalize_s = 0.0
        """Seconds from the end of the last attempt until it was complete in storage."""

    # -- LoopObserver -------------------------------------------------------------------
    def on_episode_start(self, start: EpisodeStart) -> None:
        if self._start is not None:
            raise RuntimeError(f"episode {start.episode_id}: {self._start.episode_id} is still recording")
        wal = WalWriter(self.store.wal_dir / start.episode_id, self.config.sync_interval_s)
        wal.start(start)
        self._queue = queue.Queue(maxsize=self.config.queue_frames)
        self._workers = [
            threading.Thread(target=self._encode_loop, args=(wal,), name=f"recorder-encode-{i}", daemon=True)
            for i in range(self.config.encode_workers)
        ]
        for w in self._workers:
            w.start()
        with self._lock:
            self._dropped = {}
            self._wal = wal
            self._start = start

    def on_step(self, step: StepRecord) -> None:
        wal = self._wal
        if wal is None:
            raise RuntimeError("on_step before on_episode_start")
        wal.put(step)
        for name, value in step.extras.items():
            self.record_sample(f"policy.{name}", step.t, value)
        for name, image in step.images.items():
            self._enqueue(name, image, step.image_times.get(name, step.t), step.index)

    def on_event(self, event: Event) -> None:
        if self._wal is not None:
            self._wal.put(event)

    def on_episode_end(self, end: EpisodeEnd) -> None:
        t0 = time.monotonic()
        start, wal = self._start, self._wal
        if start is None or wal is None:
            raise RuntimeError("on_episode_end before on_episode_start")
        with self._lock:
            self._wal = None  # free-running cameras stop feeding this attempt
            dropped = dict(self._dropped)
        for _ in self._workers:
            self._queue.put(None)
        for w in self._workers:
            w.join()
        self._workers = []
        with self._lock:
            dropped = dict(self._dropped)  # encode failures counted while draining
        self._start = None
        try:
            contents = wal.close(None if end.discard else end, dropped)
            if end.discard:
                remove_log(wal.directory)
                log.info("episode %s discarded", start.episode_id)
            else:
                outcome = store_log(self.store, wal.directory, contents)
                if outcome.action in ("finalized", "recovered"):
                    self.saved.append(start.episode_id)
                log.info("%s", outcome.line())
        finally:
            wal.release()
        self.last_finalize_s = time.monotonic() - t0

    # -- other inputs (any thread) ------------------------------------------------------
    def on_frame(self, camera: str, image: np.ndarray, t: float) -> None:
        """A frame from a free-running camera, captured at monotonic time ``t``; kept only while an
        attempt records. Never blocks: a full encode queue counts the frame as dropped."""
        if self._wal is not None:
            self._enqueue(camera, image, t, -1)

    def record_sample(self, stream: str, t: float, value: np.ndarray) -> None:
        """A sample of a low-dimensional stream with its own rate (stored as a timed stream)."""
        wal = self._wal
        if wal is not None:
            wal.put(Sample(stream, t, np.asarray(value)))

    def dropped_frames(self) -> dict[str, int]:
        """Frames dropped so far in the current (or last) attempt, per camera."""
        with self._lock:
            return dict(self._dropped)

    @property
    def recording(self) -> bool:
        return self._wal is not None

    # -- internals ----------------------------------------------------------------------
    def _enqueue(self, name: str, image: np.ndarray, t: float, step: int) -> None:
        try:
            self._queue.put_nowait((name, image, t, step))
        except queue.Full:
            self._count_drop(name)

    def _count_drop(self, name: str) -> None:
        with self._lock:
            self._dropped[name] = self._dropped.get(name, 0) + 1
            dropped, wal = dict(self._dropped), self._wal
        if wal is not None:
            wal.set_dropped(dropped)

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
            wal.put(Frame(name, t, step, int(image.shape[0]), int(image.shape[1]), buf.tobytes()))
