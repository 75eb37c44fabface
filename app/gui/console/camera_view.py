"""The live camera views: the newest frame scaled to fit (aspect kept), or "NO SIGNAL".

A :class:`CameraView` shows one camera and counts the distinct frame numbers it has actually
painted (not repaints, not frames that arrived and were replaced before a paint), so the refresh
rate an operator sees can be measured. A :class:`CameraWall` shows every camera side by side.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

import numpy as np
from PyQt6.QtCore import QSize, Qt, QTimer
from PyQt6.QtGui import QFont, QImage, QPaintEvent, QPixmap, QResizeEvent
from PyQt6.QtWidgets import QLabel, QSizePolicy, QWidget

NO_SIGNAL_TEXT = "NO SIGNAL"
MAX_FRAME_AGE_S = 1.0
"""A view with no new frame for this long shows NO SIGNAL: a frozen picture is never shown as live."""
RATE_WINDOW_S = 2.0
"""The painted-frame rate is counted over this many seconds."""


def frame_to_qimage(frame: np.ndarray) -> QImage:
    """Convert an RGB / RGBA / grey ``uint8`` frame to a QImage that owns its pixels.

    Raises ``ValueError`` for anything else, with a reason a person can act on.
    """
    if frame.dtype != np.uint8:
        raise ValueError(f"camera frame must be uint8, got {frame.dtype}")
    if frame.ndim == 2:
        fmt, channels = QImage.Format.Format_Grayscale8, 1
    elif frame.ndim == 3 and frame.shape[2] == 3:
        fmt, channels = QImage.Format.Format_RGB888, 3
    elif frame.ndim == 3 and frame.shape[2] == 4:
        fmt, channels = QImage.Format.Format_RGBA8888, 4
    else:
        raise ValueError(f"camera frame must be HxW, HxWx3 or HxWx4, got shape {frame.shape}")
    height, width = frame.shape[:2]
    if height == 0 or width == 0:
        raise ValueError("camera frame is empty")
    pixels = np.ascontiguousarray(frame)
    # PyQt takes any buffer here; its stubs only list bytes.
    image = QImage(pixels.data, width, height, width * channels, fmt)  # type: ignore[call-overload]
    return image.copy()  # detach from the numpy buffer


class CameraView(QLabel):
    """Shows the newest camera frame, scaled to the widget with its aspect ratio kept.

    Small simulator images are scaled with nearest-neighbour (cheap, and the operator sees the
    real pixels). :meth:`set_stale` replaces the picture with "NO SIGNAL" so a frozen frame is
    never mistaken for a live one.
    """

    def __init__(self, parent: QWidget | None = None, max_age_s: float = MAX_FRAME_AGE_S) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._stale = True
        self._seq = 0
        """Number of the frame being shown (the sender's, or counted here when it gave none)."""
        self._frame_at = 0.0
        self._painted: collections.deque[tuple[float, int]] = collections.deque()
        """(time, frame number) of each distinct frame painted, over the last RATE_WINDOW_S."""
        self.max_age_s = max_age_s
        self._age_timer = QTimer(self)
        self._age_timer.setInterval(100)
        self._age_timer.timeout.connect(self._check_age)
        self._age_timer.start()
        self.setObjectName("cameraView")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(QSize(320, 240))
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setStyleSheet("QLabel#cameraView { background: #111; color: #9e9e9e; }")
        font = QFont(self.font())
        font.setPointSize(28)
        font.setBold(True)
        self.setFont(font)
        self.setText(NO_SIGNAL_TEXT)

    @property
    def stale(self) -> bool:
        return self._stale

    @property
    def frame_size(self) -> QSize | None:
        """Size in pixels of the frame being shown (None when there is none)."""
        return None if self._image is None or self._stale else self._image.size()

    @property
    def seq(self) -> int:
        """The number of the frame being shown (0 before the first)."""
        return self._seq

    def set_frame(self, frame: np.ndarray, seq: int | None = None) -> None:
        """Show ``frame``; ``seq`` is its number from the sender (distinct frames, distinct numbers;
        None: every call is a new frame)."""
        self._image = frame_to_qimage(frame)
        self._seq = self._seq + 1 if seq is None else seq
        self._frame_at = time.monotonic()
        self._stale = False
        self._rescale()

    def painted_fps(self, now: float | None = None) -> float:
        """Distinct frames painted per second over the last :data:`RATE_WINDOW_S` seconds."""
        now = time.monotonic() if now is None else now
        self._forget(now)
        return len(self._painted) / RATE_WINDOW_S

    def paintEvent(self, event: QPaintEvent | None) -> None:
        super().paintEvent(event)
        if self._stale or self._image is None:
            return
        if not self._painted or self._painted[-1][1] != self._seq:
            now = time.monotonic()
            self._painted.append((now, self._seq))
            self._forget(now)

    def _forget(self, now: float) -> None:
        while self._painted and self._painted[0][0] < now - RATE_WINDOW_S:
            self._painted.popleft()

    def _check_age(self) -> None:
        if not self._stale and time.monotonic() - self._frame_at > self.max_age_s:
            self.set_stale(True)

    def set_stale(self, stale: bool = True) -> None:
        if stale == self._stale:
            return
        self._stale = stale
        if stale:
            self.clear()
            self.setText(NO_SIGNAL_TEXT)
        else:
            self._rescale()

    def resizeEvent(self, event: QResizeEvent | None) -> None:
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._image is None or self._stale:
            return
        pixmap = QPixmap.fromImage(self._image).scaled(
            self.size(),
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.FastTransformation,
        )
        self.setPixmap(pixmap)


class CameraWall:
    """The station's cameras by name, each in a view of its own: the first camera shows in
    ``primary`` (the window's main view), each other one in a view made when its first frame
    arrives and handed to ``place`` (which puts it on screen under the camera's name)."""

    def __init__(self, primary: CameraView, place: Callable[[str, CameraView], None]) -> None:
        self.primary = primary
        self.place = place
        self.views: dict[str, CameraView] = {}

    def expect(self, cameras: tuple[str, ...]) -> None:
        """Make the views of ``cameras`` now, in this order (each shows NO SIGNAL until its first
        frame), so the order on screen does not depend on which frame arrives first."""
        for camera in cameras:
            self._view(camera)

    def show_frame(self, camera: str, image: np.ndarray, seq: int) -> CameraView:
        """Show frame ``seq`` of ``camera`` (ValueError for an image that is not one)."""
        view = self._view(camera)
        view.set_frame(image, seq)
        return view

    def _view(self, camera: str) -> CameraView:
        view = self.views.get(camera)
        if view is None:
            view = self.primary if not self.views else CameraView()
            if view is not self.primary:
                view.setFont(self.primary.font())
                view.set_stale(True)
            self.views[camera] = view
            self.place(camera, view)
        return view

    def painted_fps(self) -> dict[str, float]:
        """Distinct frames painted per second, per camera."""
        return {name: view.painted_fps() for name, view in self.views.items()}
