"""The live camera view: the newest frame scaled to fit (aspect kept), or "NO SIGNAL"."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QSize, Qt
from PyQt6.QtGui import QFont, QImage, QPixmap, QResizeEvent
from PyQt6.QtWidgets import QLabel, QSizePolicy, QWidget

NO_SIGNAL_TEXT = "NO SIGNAL"


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

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._stale = True
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

    def set_frame(self, frame: np.ndarray) -> None:
        self._image = frame_to_qimage(frame)
        self._stale = False
        self._rescale()

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
