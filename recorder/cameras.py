"""Camera sources and their capture threads.

A :class:`Camera` is a small hardware seam: configuration in the constructor, no I/O until
:meth:`Camera.connect`, :meth:`Camera.read` blocks until the next frame and returns it with the
monotonic time it was captured, :meth:`Camera.close`; usable in a with-block.

- :class:`SyntheticCamera`: a deterministic moving textured pattern at a fixed rate (tests, benches);
- :class:`OpenCVCamera`: anything ``cv2.VideoCapture`` opens (device index, URL, video file).

Simulator cameras come with the station's observations (``Observation.images``); they reach the
recorder through the control loop's step records instead.

:class:`CameraCapture` runs one camera on its own thread and hands every frame to a sink such as
:meth:`takeover.recorder.recorder.EpisodeRecorder.on_frame`.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import cv2
import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CapturedFrame:
    image: np.ndarray
    """(H, W, 3) uint8 RGB, owned by the receiver (never reused by the camera)."""
    t: float
    """Monotonic time (s) at which the frame was captured."""
    index: int
    """Frame counter of the camera since connect."""


class Camera(abc.ABC):
    name: str

    @abc.abstractmethod
    def connect(self) -> None: ...

    @abc.abstractmethod
    def read(self) -> CapturedFrame | None:
        """Block until the next frame; None when the source has ended or failed."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@dataclass(frozen=True)
class SyntheticCameraConfig:
    name: str = "synthetic"
    width: int = 640
    height: int = 480
    fps: float = 30.0
    seed: int = 0
    speed_px: int = 7
    """How far the pattern moves per frame."""
    paced: bool = True
    """False returns frames as fast as they are asked for (tests)."""

    def __post_init__(self) -> None:
        if self.width < 8 or self.height < 8:
            raise ValueError(
                f"camera {self.name}: image must be at least 8×8, got {self.width}×{self.height}"
            )
        if not self.fps > 0:
            raise ValueError(f"camera {self.name}: fps must be positive, got {self.fps}")


def synthetic_texture(width: int, height: int, seed: int) -> np.ndarray:
    """A deterministic (H, 2W, 3) uint8 texture that wraps around horizontally: smooth blobs,
    stripes and fine grain, so JPEG sizes resemble a real scene's."""
    rng = np.random.default_rng(seed)
    w2 = 2 * width
    coarse = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
    coarse = np.concatenate([coarse, coarse], axis=1)  # horizontal period = width
    blobs = cv2.resize(coarse, (w2 + 32, height + 16), interpolation=cv2.INTER_CUBIC)[:height, :w2]
    x = np.arange(w2, dtype=np.float32)
    y = np.arange(height, dtype=np.float32)[:, None]
    stripes = 40.0 * np.sin(2 * np.pi * (x * 6 / width + y / 37.0))
    grain = rng.normal(0.0, 4.0, (height, width, 3)).astype(np.float32)
    grain = np.concatenate([grain, grain], axis=1)
    img = blobs.astype(np.float32) * 0.8 + stripes[..., None] + grain
    return np.clip(img, 0, 255).astype(np.uint8)


class SyntheticCamera(Camera):
    """A camera that films a textured pattern sliding sideways, frame ``k`` always the same image."""

    def __init__(self, config: SyntheticCameraConfig | None = None) -> None:
        self.config = config or SyntheticCameraConfig()
        self.name = self.config.name
        self._texture: np.ndarray | None = None
        self._index = 0
        self._t0 = 0.0

    def connect(self) -> None:
        c = self.config
        self._texture = synthetic_texture(c.width, c.height, c.seed)
        self._index = 0
        self._t0 = time.monotonic()

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` of the pattern (deterministic)."""
        if self._texture is None:
            raise RuntimeError(f"camera {self.name} is not connected")
        w = self.config.width
        off = (index * self.config.speed_px) % w
        return np.ascontiguousarray(self._texture[:, off : off + w])

    def read(self) -> CapturedFrame | None:
        if self._texture is None:
            return None
        if self.config.paced:
            due = self._t0 + self._index / self.config.fps
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        image = self.frame(self._index)
        t = time.monotonic()
        out = CapturedFrame(image, t, self._index)
        self._index += 1
        return out

    def close(self) -> None:
        self._texture = None


@dataclass(frozen=True)
class OpenCVCameraConfig:
    name: str
    source: int | str
    """Device index (0 = /dev/video0), stream URL, or video file path."""
    width: int | None = None
    height: int | None = None
    fps: float | None = None


class OpenCVCamera(Camera):
    """A camera read through ``cv2.VideoCapture``; frames are stamped when ``read`` returns them."""

    def __init__(self, config: OpenCVCameraConfig) -> None:
        self.config = config
        self.name = config.name
        self._cap: cv2.VideoCapture | None = None
        self._index = 0

    def connect(self) -> None:
        cap = cv2.VideoCapture(self.config.source)
        if not cap.isOpened():
            cap.release()
            raise ConnectionError(f"camera {self.name}: cannot open {self.config.source!r}")
        c = self.config
        for prop, value in (
            (cv2.CAP_PROP_FRAME_WIDTH, c.width),
            (cv2.CAP_PROP_FRAME_HEIGHT, c.height),
            (cv2.CAP_PROP_FPS, c.fps),
        ):
            if value is not None:
                cap.set(prop, float(value))
        self._cap, self._index = cap, 0

    def read(self) -> CapturedFrame | None:
        if self._cap is None:
            return None
        ok, bgr = self._cap.read()
        t = time.monotonic()
        if not ok or bgr is None:
            return None
        frame = CapturedFrame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), t, self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


FrameSink = Callable[[str, np.ndarray, float], None]
"""Receives (camera name, RGB image, capture time); must not block."""


class CameraCapture:
    """Reads one connected camera on its own thread and hands each frame to ``sink``."""

    def __init__(self, camera: Camera, sink: FrameSink) -> None:
        self.camera = camera
        self.sink = sink
        self.frames = 0
        self.ended = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self.ended.clear()
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.camera.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                frame = self.camera.read()
                if frame is None:
                    log.info("camera %s: no more frames", self.camera.name)
                    return
                self.frames += 1
                self.sink(self.camera.name, frame.image, frame.t)
        except Exception:
            log.exception("camera %s: capture failed", self.camera.name)
        finally:
            self.ended.set()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


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
