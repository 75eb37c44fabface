"""Camera sources: the hardware seam of the free-running cameras.

A :class:`Camera` is a small hardware seam: configuration in the constructor, no I/O until
:meth:`Camera.connect`, :meth:`Camera.read` blocks until the next frame and returns it with the
monotonic time it was captured, :meth:`Camera.close`; usable in a with-block. After ``connect``,
:meth:`Camera.spec` says what it delivers (size, nominal rate).

``read`` returns None only when the source has ended for good (a video file at its end); a read
that fails (a camera unplugged, a stream lost) raises :class:`CameraFault`, and the capture
thread (:mod:`takeover.recorder.capture`) reconnects.

- :class:`SyntheticCamera`: a deterministic moving textured pattern at a fixed rate (tests, benches);
- :class:`OpenCVCamera`: anything ``cv2.VideoCapture`` opens (device index, URL, video file).

Simulator cameras come with the station's observations (``Observation.images``); they reach the
recorder through the control loop's step records instead.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

import cv2
import numpy as np

DEFAULT_FPS = 30.0
"""Nominal rate assumed for a source that does not say its own (frames missed are counted at it)."""


class CameraFault(ConnectionError):
    """A read failed (the camera was unplugged, its stream was lost): reconnecting may help."""


@dataclass(frozen=True)
class CameraSpec:
    """What a connected camera delivers."""

    name: str
    width: int
    height: int
    fps: float
    """Nominal frame rate: frames missed while the camera is down are counted at this rate."""


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
        """Block until the next frame; None when the source has ended for good (a video file at its
        end). Raises :class:`CameraFault` when the read failed (reconnect to go on)."""

    @abc.abstractmethod
    def spec(self) -> CameraSpec:
        """Size and nominal rate of the frames (after :meth:`connect`)."""

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

    def spec(self) -> CameraSpec:
        c = self.config
        return CameraSpec(self.name, c.width, c.height, c.fps)

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


class VideoSource(Protocol):
    """What :class:`OpenCVCamera` uses of a ``cv2.VideoCapture``."""

    def isOpened(self) -> bool: ...  # OpenCV's name

    def read(self) -> tuple[bool, Any]: ...

    def set(self, prop: int, value: float) -> bool: ...

    def get(self, prop: int) -> float: ...

    def release(self) -> None: ...


CaptureFactory = Callable[[Any], VideoSource]
"""Opens a capture on a source (index, URL, file): ``cv2.VideoCapture`` itself, or a fake in tests."""


class OpenCVCamera(Camera):
    """A camera read through ``cv2.VideoCapture``; frames are stamped when ``read`` returns them.

    A failed read of a device or stream raises :class:`CameraFault`; a video file that has no
    frame left has ended (``read`` returns None). ``open_capture`` is the one seam to the driver.
    """

    def __init__(self, config: OpenCVCameraConfig, open_capture: CaptureFactory = cv2.VideoCapture) -> None:
        self.config = config
        self.name = config.name
        self._open_capture = open_capture
        self._cap: VideoSource | None = None
        self._index = 0
        self._is_file = False
        self._spec = CameraSpec(config.name, config.width or 0, config.height or 0, config.fps or DEFAULT_FPS)

    def connect(self) -> None:
        c = self.config
        try:
            cap = self._open_capture(c.source)
        except cv2.error:
            raise ConnectionError(f"cannot open {c.source!r}") from None
        if not cap.isOpened():
            cap.release()
            raise ConnectionError(f"cannot open {c.source!r}")
        for prop, value in (
            (cv2.CAP_PROP_FRAME_WIDTH, c.width),
            (cv2.CAP_PROP_FRAME_HEIGHT, c.height),
            (cv2.CAP_PROP_FPS, c.fps),
        ):
            if value is not None:
                cap.set(prop, float(value))
        fps = c.fps or float(cap.get(cv2.CAP_PROP_FPS))
        self._spec = CameraSpec(
            self.name,
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) or c.width or 0,
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) or c.height or 0,
            fps if fps > 0 else DEFAULT_FPS,
        )
        self._is_file = isinstance(c.source, str) and Path(c.source).is_file()
        self._cap, self._index = cap, 0

    def read(self) -> CapturedFrame | None:
        if self._cap is None:
            return None
        try:
            ok, bgr = self._cap.read()
        except cv2.error:
            ok, bgr = False, None
        t = time.monotonic()
        if not ok or bgr is None:
            if self._is_file:
                return None  # the end of a video file
            raise CameraFault(f"no frame from {self.config.source!r}")
        frame = CapturedFrame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), t, self._index)
        self._index += 1
        return frame

    def spec(self) -> CameraSpec:
        return self._spec

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
