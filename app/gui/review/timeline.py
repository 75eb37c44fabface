"""The episode's timeline: who drove each step (policy, human, hold, ramp), the events, the label
that counts, and the cursor. A click or a drag seeks.
"""

from __future__ import annotations

from PyQt6.QtCore import QPointF, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPaintEvent, QPen, QPolygonF
from PyQt6.QtWidgets import QSizePolicy, QWidget

from takeover.annotation.review_episode import SOURCE_NAMES, ReviewEpisode
from takeover.storage.schema import ControlSource, EventKind

SOURCE_COLORS: dict[ControlSource, QColor] = {
    ControlSource.POLICY: QColor("#2e7d32"),
    ControlSource.HUMAN: QColor("#6a1b9a"),
    ControlSource.HOLD: QColor("#ffb300"),
    ControlSource.RAMP: QColor("#1565c0"),
}
"""The console's mode colours: policy green, human purple, hold amber, ramp blue."""
OUTCOME_COLORS: dict[str, QColor] = {
    "success": QColor("#c8e6c9"),
    "near_success": QColor("#fff59d"),
    "failure": QColor("#ffcdd2"),
    "": QColor("#e0e0e0"),
}
EVENT_MARKS: dict[EventKind, tuple[str, QColor]] = {
    EventKind.TAKEOVER: ("T", QColor("#6a1b9a")),
    EventKind.HANDBACK: ("H", QColor("#2e7d32")),
    EventKind.HOLD: ("P", QColor("#ef6c00")),
    EventKind.RESUME: ("R", QColor("#2e7d32")),
    EventKind.ESTOP: ("E", QColor("#d50000")),
    EventKind.RESET: ("r", QColor("#d50000")),
    EventKind.RAMP_END: ("|", QColor("#1565c0")),
    EventKind.LIMIT: ("L", QColor("#795548")),
    EventKind.CAMERA_DOWN: ("C", QColor("#c62828")),
    EventKind.CAMERA_UP: ("c", QColor("#2e7d32")),
}
"""The letter and colour of each event drawn on the timeline (start and end are its edges)."""
LABEL_ROW = 18
SOURCE_ROW = 22
EVENT_ROW = 18
TICK_ROW = 16
MARGIN = 8


class Timeline(QWidget):
    """Draws one :class:`ReviewEpisode`; emits ``seek(step)`` on a click or a drag."""

    seek = pyqtSignal(int)

    def __init__(self) -> None:
        super().__init__()
        self.episode: ReviewEpisode | None = None
        self.at_step = 0
        self.label_text = ""
        self.outcome = ""
        self.setFixedHeight(LABEL_ROW + SOURCE_ROW + EVENT_ROW + TICK_ROW + 8)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(False)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def sizeHint(self) -> QSize:
        return QSize(600, self.height())

    def set_episode(self, episode: ReviewEpisode | None) -> None:
        self.episode = episode
        self.at_step = 0
        self.update()

    def set_label(self, outcome: str, text: str) -> None:
        self.outcome, self.label_text = outcome, text
        self.update()

    def set_cursor(self, step: int) -> None:
        if step != self.at_step:
            self.at_step = step
            self.update()

    # -- geometry -----------------------------------------------------------------------------
    def _span(self) -> tuple[float, float]:
        return float(MARGIN), float(max(1, self.width() - 2 * MARGIN))

    def x_of(self, step: float) -> float:
        """The x of the left edge of ``step`` (``num_steps`` is the right edge of the last)."""
        left, width = self._span()
        n = self.episode.num_steps if self.episode is not None else 1
        return left + width * step / max(1, n)

    def step_at(self, x: float) -> int:
        if self.episode is None:
            return 0
        left, width = self._span()
        return self.episode.clamp(int((x - left) / width * self.episode.num_steps))

    # -- input --------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent | None) -> None:
        if event is not None and event.button() == Qt.MouseButton.LeftButton and self.episode is not None:
            self.seek.emit(self.step_at(event.position().x()))

    def mouseMoveEvent(self, event: QMouseEvent | None) -> None:
        if event is not None and event.buttons() & Qt.MouseButton.LeftButton and self.episode is not None:
            self.seek.emit(self.step_at(event.position().x()))

    # -- drawing ------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent | None) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.fillRect(self.rect(), QColor("#fafafa"))
        ep = self.episode
        if ep is None or ep.num_steps == 0:
            p.setPen(QColor("#757575"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "no episode")
            p.end()
            return
        left, width = self._span()
        small = QFont(self.font())
        small.setPointSize(max(7, small.pointSize() - 1))
        p.setFont(small)
        # the label that counts
        y = 2.0
        band = QRectF(left, y, width, LABEL_ROW - 3)
        p.fillRect(band, OUTCOME_COLORS.get(self.outcome, OUTCOME_COLORS[""]))
        p.setPen(QColor("#212121"))
        p.drawText(band.adjusted(6, 0, -6, 0), Qt.AlignmentFlag.AlignVCenter, self.label_text or "no label")
        # who drove
        y += LABEL_ROW
        for seg in ep.segments:
            rect = QRectF(self.x_of(seg.start), y, self.x_of(seg.stop) - self.x_of(seg.start), SOURCE_ROW)
            p.fillRect(rect, SOURCE_COLORS[seg.source])
            name = SOURCE_NAMES[seg.source]
            if rect.width() > p.fontMetrics().horizontalAdvance(name) + 8:
                p.setPen(QColor("white") if seg.source is not ControlSource.HOLD else QColor("black"))
                p.drawText(rect, Qt.AlignmentFlag.AlignCenter, name)
        # events
        y += SOURCE_ROW + 2
        for ev in ep.events:
            mark = EVENT_MARKS.get(EventKind(ev.kind))
            if mark is None:
                continue
            letter, color = mark
            x = self.x_of(ev.step)
            p.setPen(QPen(color, 1))
            p.drawLine(QPointF(x, y - SOURCE_ROW - 2), QPointF(x, y + 2))
            p.setBrush(color)
            p.drawPolygon(QPolygonF([QPointF(x - 5, y + 2), QPointF(x + 5, y + 2), QPointF(x, y + 8)]))
            p.setPen(color)
            p.drawText(QRectF(x - 8, y + 6, 16, EVENT_ROW - 4), Qt.AlignmentFlag.AlignCenter, letter)
        # seconds
        y += EVENT_ROW
        p.setPen(QColor("#9e9e9e"))
        duration = ep.time_of(ep.last_step)
        every = next((s for s in (1, 2, 5, 10, 20, 30, 60, 120, 300) if duration / s <= 12), 600)
        t = 0
        while t <= duration + 1e-9:
            x = self.x_of(ep.step_at_time(t))
            p.drawLine(QPointF(x, y - 2), QPointF(x, y + 2))
            p.drawText(QRectF(x - 24, y + 3, 48, TICK_ROW - 2), Qt.AlignmentFlag.AlignHCenter, f"{t:g} s")
            t += every
        # cursor
        x = self.x_of(self.at_step + 0.5)
        p.setPen(QPen(QColor("#d32f2f"), 2))
        p.drawLine(QPointF(x, 0), QPointF(x, LABEL_ROW + SOURCE_ROW + EVENT_ROW))
        p.end()
