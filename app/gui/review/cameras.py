"""The cameras of the episode under review, side by side, each showing the frame of the step under
the cursor (the latest captured at or before it), or "no frame yet" before its first frame.

Each view says which frame it shows (its number and the step it was captured at), so a frame held
over several steps, or one still decoding, is never mistaken for the step's own.
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QRect, QSize, Qt
from PyQt6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent
from PyQt6.QtWidgets import QHBoxLayout, QSizePolicy, QWidget

from takeover.annotation.review_frames import Shown
from takeover.app.gui.console.camera_view import frame_to_qimage

NO_FRAME_TEXT = "no frame yet"
CAPTION_HEIGHT = 20
BACKGROUND = QColor("#1b1d23")


class FrameView(QWidget):
    """One camera: its frame scaled to fit (aspect kept) under a caption line."""

    def __init__(self, camera: str) -> None:
        super().__init__()
        self.camera = camera
        self.image: QImage | None = None
        self.pixels: np.ndarray | None = None
        """The RGB frame shown (None: no frame)."""
        self.index: int | None = None
        """The number of the frame shown in its camera's stream."""
        self.frame_step: int | None = None
        """The step the shown frame was captured at."""
        self.step: int | None = None
        """The cursor step the view was last given."""
        self.painted_step: int | None = None
        """The cursor step of the last paint (what is on screen, not only asked for)."""
        self.setMinimumSize(QSize(200, 150 + CAPTION_HEIGHT))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def show_frame(self, step: int, shown: Shown, frame_step: int | None) -> None:
        """Show what the camera shows at ``step`` (``frame_step``: where its frame was captured)."""
        self.step = step
        if shown.rgb is None or shown.index is None:
            self.image, self.pixels, self.index, self.frame_step = None, None, None, None
        elif shown.index != self.index or self.pixels is not shown.rgb:
            self.pixels = shown.rgb
            self.image = frame_to_qimage(shown.rgb)
            self.index, self.frame_step = shown.index, frame_step
        self.update()

    def clear(self) -> None:
        self.image, self.pixels, self.index, self.frame_step, self.step = None, None, None, None, None
        self.update()

    def caption(self) -> str:
        if self.index is None:
            return self.camera
        held = "" if self.frame_step == self.step else f", held from step {self.frame_step}"
        return f"{self.camera}   frame {self.index}{held}"

    def picture_rect(self) -> QRect:
        """Where the frame is drawn: the area under the caption, the frame's aspect kept."""
        area = self.rect().adjusted(0, CAPTION_HEIGHT, 0, 0)
        if self.image is None:
            return area
        size = self.image.size().scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
        x = area.x() + (area.width() - size.width()) // 2
        y = area.y() + (area.height() - size.height()) // 2
        return QRect(x, y, size.width(), size.height())

    def paintEvent(self, event: QPaintEvent | None) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        painter.setPen(QColor("#d0d4dc"))
        caption = QRect(6, 0, self.width() - 12, CAPTION_HEIGHT)
        painter.drawText(caption, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, self.caption())
        if self.image is None:
            font = QFont(self.font())
            font.setPointSize(font.pointSize() + 4)
            painter.setFont(font)
            painter.setPen(QColor("#8a8f99"))
            painter.drawText(self.picture_rect(), Qt.AlignmentFlag.AlignCenter, NO_FRAME_TEXT)
        else:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(self.picture_rect(), self.image)
        painter.end()
        self.painted_step = self.step


class CameraRow(QWidget):
    """Every camera of the episode, in name order, side by side."""

    def __init__(self) -> None:
        super().__init__()
        self.views: dict[str, FrameView] = {}
        self._box = QHBoxLayout(self)
        self._box.setContentsMargins(0, 0, 0, 0)
        self._box.setSpacing(4)
        self._empty = FrameView("no cameras")
        self._box.addWidget(self._empty)

    def set_cameras(self, cameras: list[str]) -> None:
        """Make one view per camera (reusing a view of the same name)."""
        if list(self.views) == cameras:
            for view in self.views.values():
                view.clear()
            return
        for view in self.views.values():
            self._box.removeWidget(view)
            view.deleteLater()
        self.views = {name: FrameView(name) for name in cameras}
        self._empty.setVisible(not cameras)
        for view in self.views.values():
            self._box.addWidget(view, 1)
