"""Capture threads for free-running cameras: frames to a sink, health to another, reconnects.

:class:`CameraCapture` reads one connected :class:`~takeover.recorder.cameras.Camera` on its own
thread and hands every frame to a sink such as
:meth:`takeover.recorder.recorder.EpisodeRecorder.on_frame`. When a read fails it reports the
camera down (:class:`CameraHealth`), closes it and reconnects with exponential backoff, reporting
each failed attempt; the first frame after a reconnect reports it up again. A source that has
ended for good (a video file) ends the thread, the camera reported down for good.

:class:`LatestFrames` keeps the newest frame of each camera for a live preview;
:class:`LiveFrames` keeps every camera's newest frame numbered, for the engine's frame stream
(:class:`StepFrames` feeds it the station's frames from the loop's steps).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from takeover.recorder.cameras import Camera, CameraFault, CameraSpec
from takeover.recorder.records import EpisodeEnd, EpisodeStart, StepRecord
from takeover.storage.schema import Event

log = logging.getLogger(__name__)

FrameSink = Callable[[str, np.ndarray, float], object]
"""Receives (camera name, RGB image, capture time); must not block."""


@dataclass(frozen=True)
class CameraHealth:
    """A camera's state from ``since`` on, as its capture thread reports it."""

    spec: CameraSpec
    up: bool
    since: float
    """Monotonic time the state began. Down: when the next frame was due (one nominal frame period
    after the last good one). Up: the capture time of the first frame (of the first frame after a
    reconnect, or the connect time when the capture starts)."""
    reason: str = ""
    """Why it is down (the failed read, then the latest failed reconnect)."""
    attempts: int = 0
    """Reconnection attempts in the current outage so far."""
    reconnecting: bool = True
    """False when the capture has given up (the source ended for good, or the capture failed)."""

    @property
    def camera(self) -> str:
        return self.spec.name


HealthSink = Callable[[CameraHealth], None]
"""Receives every health report (any thread); must not block."""


@dataclass(frozen=True)
class Backoff:
    """Delays between reconnection attempts: ``first``, doubling up to ``longest`` (seconds)."""

    first: float = 0.1
    longest: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.first <= self.longest:
            raise ValueError(f"backoff needs 0 < first <= longest, got {self.first} and {self.longest}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reconnection attempt ``attempt`` (1, 2, ...)."""
        return min(self.longest, self.first * 2.0 ** min(attempt - 1, 30))


_CONNECT_ERRORS = (OSError, RuntimeError, ValueError, cv2.error)
"""What a failed (re)connect may raise: the camera is still down."""


class CameraCapture:
    """Reads one connected camera on its own thread; reconnects it when a read fails.

    ``frames`` counts the frames handed to ``sink``; ``reconnects`` the outages it came back from.
    ``ended`` is set when the thread is over (stopped, or the source ended for good).
    """

    def __init__(
        self,
        camera: Camera,
        sink: FrameSink,
        health: HealthSink | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.camera = camera
        self.sink = sink
        self.health = health
        self.backoff = backoff or Backoff()
        self.frames = 0
        self.reconnects = 0
        self.ended = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start reading (the camera is connected already); reports the camera up."""
        self._stop.clear()
        self.ended.clear()
        self._report(CameraHealth(self.camera.spec(), True, time.monotonic()))
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.camera.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _report(self, health: CameraHealth) -> None:
        if self.health is not None:
            self.health(health)

    def _run(self) -> None:
        name = self.camera.name
        last_t: float | None = None
        down: CameraHealth | None = None
        try:
            while not self._stop.is_set():
                try:
                    frame = self.camera.read()
                except CameraFault as exc:
                    down = self._went_down(last_t, str(exc))
                    if not self._reconnect(down):
                        return
                    continue
                if frame is None:  # for good: no reconnecting, but the camera is down from now on
                    log.warning("camera %s: the source has no more frames", name)
                    self._went_down(last_t, "the source has no more frames", reconnecting=False)
                    return
                if down is not None:
                    self.reconnects += 1
                    log.warning("camera %s: back after %.2f s", name, frame.t - down.since)
                    self._report(CameraHealth(self.camera.spec(), True, frame.t))
                    down = None
                self.frames += 1
                last_t = frame.t
                self.sink(name, frame.image, frame.t)
        except Exception:  # a bug in a sink or a driver: the camera is gone, and says so
            log.exception("camera %s: capture failed", name)
            self._went_down(last_t, "capture failed", reconnecting=False)
        finally:
            self.ended.set()

    def _went_down(self, last_t: float | None, reason: str, reconnecting: bool = True) -> CameraHealth:
        now = time.monotonic()
        due = now if last_t is None else min(now, last_t + 1.0 / self.camera.spec().fps)
        if reconnecting:
            log.warning("camera %s: %s; reconnecting", self.camera.name, reason)
        health = CameraHealth(self.camera.spec(), False, due, reason, reconnecting=reconnecting)
        self._report(health)
        return health

    def _reconnect(self, down: CameraHealth) -> bool:
        """Close the camera and connect it again, with backoff, until it connects (True) or the
        capture is stopped (False). Each failed attempt is reported."""
        attempt = 0
        while True:
            self.camera.close()
            attempt += 1
            if self._stop.wait(self.backoff.delay(attempt)):
                return False
            try:
                self.camera.connect()
                return True
            except _CONNECT_ERRORS as exc:
                reason = str(exc) or type(exc).__name__
                self._report(CameraHealth(down.spec, False, down.since, reason, attempt))


class LatestFrames:
    """The newest frame of each free-running camera, for a live preview (any thread).

    Use it as (or beside) a :class:`CameraCapture` sink. :meth:`previews` returns small copies:
    each frame is subsampled by a whole stride until it is at most ``max_height`` rows high, and
    a camera whose newest frame is older than ``max_age_s`` is left out, so a frozen picture is
    never shown as a live one.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._frames: dict[str, tuple[float, np.ndarray]] = {}

    def __call__(self, camera: str, image: np.ndarray, t: float) -> None:
        with self._lock:
            self._frames[camera] = (t, image)

    def previews(self, max_height: int = 180, max_age_s: float = 1.0) -> dict[str, np.ndarray]:
        now = self._clock()
        with self._lock:
            frames = dict(self._frames)
        out = {}
        for name, (t, image) in sorted(frames.items()):
            if now - t > max_age_s:
                continue
            stride = max(1, -(-image.shape[0] // max_height))
            out[name] = np.ascontiguousarray(image[::stride, ::stride])
        return out


@dataclass(frozen=True)
class LiveFrame:
    """A camera's frame as the live view gets it."""

    camera: str
    seq: int
    """1, 2, ... per camera: distinct frames have distinct numbers."""
    t: float
    """Monotonic capture time (for a rendered camera: the time of the state it shows)."""
    image: np.ndarray


class LiveFrames:
    """Every camera's newest frame, numbered, for whoever shows them live (any thread).

    Sources call it like a :data:`FrameSink`; :meth:`wait_newer` blocks until some camera has a
    frame newer than the caller has seen. Only the newest frame of each camera is kept: a slow
    reader skips frames, it never delays a source.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frames: dict[str, LiveFrame] = {}

    def __call__(self, camera: str, image: np.ndarray, t: float) -> None:
        with self._cond:
            old = self._frames.get(camera)
            self._frames[camera] = LiveFrame(camera, old.seq + 1 if old is not None else 1, t, image)
            self._cond.notify_all()

    def latest(self) -> dict[str, LiveFrame]:
        with self._cond:
            return dict(self._frames)

    def wait_newer(self, seen: dict[str, int], timeout_s: float) -> list[LiveFrame]:
        """Frames newer than ``seen`` (camera -> last sequence number seen), waiting up to
        ``timeout_s`` for one; [] if none came."""

        def newer() -> list[LiveFrame]:
            return [f for f in self._frames.values() if f.seq > seen.get(f.camera, 0)]

        with self._cond:
            self._cond.wait_for(lambda: bool(newer()), timeout_s)
            return newer()


class StepFrames:
    """A loop observer that hands the station's frames from each step to a sink (a
    :class:`LiveFrames`), except frames rendered off the loop: those reach it as they are made."""

    def __init__(self, sink: FrameSink) -> None:
        self._sink = sink

    def on_episode_start(self, start: EpisodeStart) -> None:
        pass

    def on_step(self, step: StepRecord) -> None:
        for name, image in step.images.items():
            if name not in step.rendered_earlier:
                self._sink(name, image, step.image_times.get(name, step.t))

    def on_event(self, event: Event) -> None:
        pass

    def on_episode_end(self, end: EpisodeEnd) -> None:
        pass
