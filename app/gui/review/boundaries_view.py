"""The hand-over boundaries of the episode under review: for each takeover and hand-back, the
executed action around it as recorded (left) and as boundary smoothing derives it (right), on the
same axes, with what smoothing did there in words, and the boundary's edit that counts (where it
was moved to, the pre-intervention window marked).

Under the plots, the boundary shown can be edited (a revision by the annotator, written by the
window's writer thread; docs/labels.md): where it counts from, and for a takeover the first step of
the pre-intervention window. ``takeover annotate boundary`` does the same from a shell.
"""

from __future__ import annotations

import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from takeover.annotation.review_boundaries import AFTER_S, BEFORE_S, HandOver, HandOvers
from takeover.app.gui.review.plots import PALETTE

ORIGIN_TEXT = {
    "stored": "smoothed: the stored derivation",
    "computed": "smoothed: computed now, not stored (`takeover annotate smooth` stores it)",
    "none": "no smoothing",
}
NOT_HERE = (
    "Shaded: blended (amber), removed (blue), pre-intervention (red); purple line: where an edited "
    "boundary counts from."
)


BLENDED_COLOR = pg.mkBrush(255, 224, 130, 110)
REMOVED_COLOR = pg.mkBrush(144, 202, 249, 110)
PRE_WINDOW_COLOR = pg.mkBrush(239, 154, 154, 90)
MOVED_PEN = pg.mkPen("#6a1b9a", width=2, style=Qt.PenStyle.DashLine)


def _title(side: str, components: tuple[str, ...]) -> str:
    names = "  ".join(
        f"<span style='color:{PALETTE[k % len(PALETTE)]}'>{name}</span>" for k, name in enumerate(components)
    )
    return f"<b>{side}</b>&nbsp;&nbsp;{names}"


class BoundariesView(QWidget):
    """Raw and smoothed hand-overs side by side; emits ``seek(step)`` from 'Go to', and
    ``edited(kind, recorded_step, step, pre_window_start)`` from 'Save edit' (the window start
    None: the default window)."""

    seek = pyqtSignal(int)
    edited = pyqtSignal(str, int, int, object)

    def __init__(self) -> None:
        super().__init__()
        self.hand_overs: HandOvers | None = None
        self.num_steps: int | None = None
        self.picker = QComboBox()
        self.picker.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.picker.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.picker.setMinimumContentsLength(24)
        self.picker.currentIndexChanged.connect(self._show)
        self.go = QPushButton("Go to boundary")
        self.go.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.go.clicked.connect(lambda _checked=False: self._go())
        self.summary = QLabel("")
        self.origin = QLabel("")
        self.origin.setObjectName("boundaryOrigin")
        self.raw = self._plot()
        self.smoothed = self._plot()
        self.spans: list[pg.GraphicsObject] = []
        """The shaded spans and lines of the hand-over shown."""
        self.smoothed.setXLink(self.raw)
        self.smoothed.setYLink(self.raw)
        top = QHBoxLayout()
        top.addWidget(QLabel("hand-over"))
        top.addWidget(self.picker, 1)
        top.addWidget(self.go)
        plots = QHBoxLayout()
        plots.addWidget(self.raw, 1)
        plots.addWidget(self.smoothed, 1)
        note = QLabel(NOT_HERE)
        note.setObjectName("boundaryNote")
        note.setToolTip(NOT_HERE)
        # One line each, never widening the window or taking height from the cameras.
        for label in (self.summary, self.origin, note):
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.step_box = QSpinBox()
        self.window_on = QCheckBox("pre-intervention window from step")
        self.window_box = QSpinBox()
        self.save = QPushButton("Save edit")
        for w in (self.step_box, self.window_box, self.window_on, self.save):
            # Clicked, never tabbed into: the review keys (1/2/3, arrows) stay the window's.
            w.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.window_on.toggled.connect(self.window_box.setEnabled)
        self.save.clicked.connect(lambda _checked=False: self._save())
        edit = QHBoxLayout()
        edit.addWidget(QLabel("counts from step"))
        edit.addWidget(self.step_box)
        edit.addSpacing(12)
        edit.addWidget(self.window_on)
        edit.addWidget(self.window_box)
        edit.addStretch(1)
        edit.addWidget(self.save)
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 4)
        box.addLayout(top)
        box.addWidget(self.summary)
        box.addLayout(plots, 1)
        box.addLayout(edit)
        box.addWidget(self.origin)
        box.addWidget(note)
        self.set_hand_overs(None)

    @staticmethod
    def _plot() -> pg.PlotWidget:
        plot = pg.PlotWidget(background="w")
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setMouseEnabled(x=False, y=False)
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.setLabel("bottom", "seconds from the boundary")
        plot.addLine(x=0, pen=pg.mkPen("#616161", width=1, style=Qt.PenStyle.DashLine))
        plot.setXRange(-BEFORE_S, AFTER_S, padding=0.02)
        return plot

    def set_hand_overs(self, hand_overs: HandOvers | None, num_steps: int | None = None) -> None:
        """Show ``hand_overs`` (None: being read) of an episode of ``num_steps`` steps."""
        self.hand_overs = hand_overs
        self.num_steps = num_steps
        self.picker.blockSignals(True)
        self.picker.clear()
        items = hand_overs.items if hand_overs is not None else ()
        for i, item in enumerate(items):
            b = item.boundary
            moved = (
                f", moved to {item.edit.step}" if item.edit is not None and item.edit.step != b.step else ""
            )
            reason = f" ({b.reason})" if b.reason else ""
            self.picker.addItem(f"{i + 1}. {b.kind} at step {b.step}{moved}{reason}")
        self.picker.blockSignals(False)
        self.picker.setEnabled(bool(items))
        self.go.setEnabled(bool(items))
        if hand_overs is None:
            origin = "reading the episode…"
        elif not items:
            origin = "this attempt has no takeover or hand-back"
        else:
            origin = ORIGIN_TEXT[hand_overs.origin]
            if hand_overs.problem:
                origin = f"{origin}; {hand_overs.problem}"
        self.origin.setText(origin)
        self._show()

    def current(self) -> HandOver | None:
        if self.hand_overs is None or not self.hand_overs.items:
            return None
        return self.hand_overs.items[max(0, self.picker.currentIndex())]

    def _show(self) -> None:
        item = self.current()
        for plot in (self.raw, self.smoothed):
            for curve in plot.listDataItems():
                plot.removeItem(curve)
        for mark in self.spans:
            view = mark.getViewBox()
            if view is not None:
                view.removeItem(mark)
        self.spans.clear()
        names = item.components if item is not None else ()
        self.raw.setTitle(_title("raw (as recorded)", names), size="9pt")
        self.smoothed.setTitle(_title("smoothed", names), size="9pt")
        self._show_edit(item)
        if item is None:
            self.summary.setText("")
            return
        self.summary.setText(item.summary())
        spans = (
            (item.blended, BLENDED_COLOR),
            (item.removed, REMOVED_COLOR),
            (item.pre_window, PRE_WINDOW_COLOR),
        )
        for span, color in spans:
            if span is None:
                continue
            for plot in (self.raw, self.smoothed):
                region = pg.LinearRegionItem(values=span, brush=color, movable=False)
                region.setZValue(-10)
                plot.addItem(region)
                self.spans.append(region)
        if item.moved_to is not None:
            for plot in (self.raw, self.smoothed):
                line = pg.InfiniteLine(pos=item.moved_to, angle=90, pen=MOVED_PEN, movable=False)
                plot.addItem(line)
                self.spans.append(line)
        for k, name in enumerate(item.components):
            pen = pg.mkPen(PALETTE[k % len(PALETTE)], width=2)
            self.raw.plot(item.raw_t, item.raw_action[:, k], pen=pen, symbol="o", symbolSize=3, name=name)
            if item.smooth_t.size:
                self.smoothed.plot(item.smooth_t, item.smooth_action[:, k], pen=pen, symbol="o", symbolSize=3)

    def _limits(self, index: int) -> tuple[int, int]:
        """The steps the boundary at ``index`` may count from: between its neighbours."""
        items = self.hand_overs.items if self.hand_overs is not None else ()
        lo = items[index - 1].boundary.step + 1 if index > 0 else 1
        last = (self.num_steps - 1) if self.num_steps else 10**9
        hi = items[index + 1].boundary.step - 1 if index + 1 < len(items) else last
        return lo, max(lo, hi)

    def _show_edit(self, item: HandOver | None) -> None:
        for w in (self.step_box, self.save):
            w.setEnabled(item is not None)
        takeover = item is not None and item.boundary.kind == "takeover"
        self.window_on.setEnabled(takeover)
        if item is None:
            self.window_on.setChecked(False)
            self.window_box.setEnabled(False)
            return
        index = max(0, self.picker.currentIndex())
        lo, hi = self._limits(index)
        self.step_box.setRange(lo, hi)
        self.step_box.setValue(item.edit.step if item.edit is not None else item.boundary.step)
        first = self.hand_overs.items[index - 1].boundary.step if index > 0 and self.hand_overs else 0
        self.window_box.setRange(first, hi)
        marked = item.edit.pre_window_start if item.edit is not None else None
        self.window_on.setChecked(takeover and marked is not None)
        self.window_box.setValue(marked if marked is not None else max(first, self.step_box.value() - 20))
        self.window_box.setEnabled(takeover and marked is not None)

    def _save(self) -> None:
        item = self.current()
        if item is None:
            return
        b = item.boundary
        window = self.window_box.value() if self.window_on.isChecked() and b.kind == "takeover" else None
        self.edited.emit(str(b.kind), int(b.step), self.step_box.value(), window)

    def _go(self) -> None:
        item = self.current()
        if item is not None:
            self.seek.emit(item.boundary.step)
