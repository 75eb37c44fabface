"""The console's panels, each shown from one part of the engine's :class:`Status`.

- :class:`GuardedButton`: a button that ignores clicks for a moment after it becomes enabled, so
  a click meant for whatever was there before (a double-click on Start) never ends an attempt.
- :class:`ProblemPanel`: a failed start, its cause in plain words and the ways out.
- :class:`HealthPanel`: one line per :class:`HealthItem`, coloured by level.
- :class:`SessionPanel`: operator, task and the session's figures.
- :class:`StatePlot`: the end effector's position over the last seconds.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QEvent, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont
from PyQt6.QtWidgets import (
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from takeover.app.engine.protocol import AttemptClock, HealthItem, SessionFigures, StartProblem

CLICK_GUARD_S = 0.5
"""A button that ends an attempt ignores clicks this long after it became enabled."""
LEVEL_COLORS: dict[str, QColor] = {
    "ok": QColor("#2e7d32"),
    "warning": QColor("#ef6c00"),
    "error": QColor("#c62828"),
}
HEALTH_ROWS = 7
"""The health panel has room for this many lines (fixed height); more are summed up in the last."""
PLOT_SECONDS = 10.0


class GuardedButton(QPushButton):
    """A push button that reports, through :meth:`accepts_click`, whether it has been enabled
    for at least ``guard_s`` (a click sooner was aimed at something else)."""

    def __init__(self, text: str, guard_s: float = CLICK_GUARD_S) -> None:
        super().__init__(text)
        self.guard_s = guard_s
        self.enabled_at = time.monotonic()

    def changeEvent(self, event: QEvent | None) -> None:
        if event is not None and event.type() == QEvent.Type.EnabledChange and self.isEnabled():
            self.enabled_at = time.monotonic()
        super().changeEvent(event)

    def accepts_click(self) -> bool:
        return self.isEnabled() and time.monotonic() - self.enabled_at >= self.guard_s


def clock_texts(clock: AttemptClock | None) -> tuple[str, str, str]:
    """('12.3 s of 25 s', '12.7 s left', '3.0 s' held) for the attempt panel; dashes when idle."""
    if clock is None:
        return "—", "—", "—"
    left = max(0.0, clock.limit_s - clock.elapsed_s)
    return (
        f"{clock.elapsed_s:.1f} s of {clock.limit_s:g} s",
        f"{left:.1f} s left",
        f"{clock.held_s:.1f} s",
    )


class ProblemPanel(QFrame):
    """Shown instead of the cameras when the engine failed to start: what went wrong, plainly,
    and a button per remedy the engine offers."""

    retry = pyqtSignal()
    keyboard = pyqtSignal()
    settings = pyqtSignal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("problemPanel")
        self.setStyleSheet(
            "QFrame#problemPanel { background: #fff3f3; border: 3px solid #c62828; border-radius: 8px; }"
        )
        box = QVBoxLayout(self)
        box.setContentsMargins(24, 20, 24, 20)
        title = QLabel("The station did not start")
        font = QFont(title.font())
        font.setPointSize(18)
        font.setBold(True)
        title.setFont(font)
        title.setStyleSheet("color: #b71c1c;")
        self.cause = QLabel("")
        self.cause.setWordWrap(True)
        cause_font = QFont(self.cause.font())
        cause_font.setPointSize(13)
        self.cause.setFont(cause_font)
        self.cause.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        hint = QLabel("No attempt can start until this is fixed. Choose a way out:")
        self.retry_button = QPushButton("Retry")
        self.keyboard_button = QPushButton("Use the keyboard instead")
        self.settings_button = QPushButton("Open settings…")
        buttons = QHBoxLayout()
        for button, signal in (
            (self.retry_button, self.retry),
            (self.keyboard_button, self.keyboard),
            (self.settings_button, self.settings),
        ):
            button.setMinimumHeight(48)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.clicked.connect(lambda _checked=False, s=signal: s.emit())
            buttons.addWidget(button)
        box.addWidget(title)
        box.addWidget(self.cause)
        box.addWidget(hint)
        box.addLayout(buttons)
        box.addStretch(1)

    def show_problem(self, problem: StartProblem | None) -> None:
        self.cause.setText(problem.cause if problem is not None else "the engine gave no reason")
        remedies = problem.remedies if problem is not None else ("retry", "settings")
        self.retry_button.setVisible("retry" in remedies)
        self.keyboard_button.setVisible("keyboard" in remedies)
        self.settings_button.setVisible("settings" in remedies)


class HealthPanel(QGroupBox):
    """One line per health item: a coloured dot, the name, the detail."""

    def __init__(self) -> None:
        super().__init__("Health")
        box = QVBoxLayout(self)
        box.setSpacing(1)
        self.lines: list[QLabel] = []
        for _ in range(HEALTH_ROWS):
            line = QLabel("")
            line.setTextFormat(Qt.TextFormat.RichText)
            line.setWordWrap(True)  # a long detail takes a second line, never cut off
            box.addWidget(line)
            self.lines.append(line)
        self.levels: dict[str, str] = {}
        """The level shown for each item, by name."""
        self.lines[0].setText("<span style='color:#757575'>no health reported yet</span>")

    def fix_height(self) -> None:
        """Fix the panel's height for its fonts as shown (call once it is in the window)."""
        spare = 3 * self.lines[0].fontMetrics().lineSpacing()  # room for details on two lines
        self.setFixedHeight(self.sizeHint().height() + spare)

    def show_items(self, items: tuple[HealthItem, ...]) -> None:
        self.levels = {item.name: item.level for item in items}
        # Worst first: an error never scrolls out of sight.
        order = {"error": 0, "warning": 1, "ok": 2}
        ranked = sorted(items, key=lambda item: order.get(item.level, 0))
        shown = ranked[: HEALTH_ROWS - 1] if len(ranked) > HEALTH_ROWS else ranked
        for line, item in zip(self.lines, shown, strict=False):
            color = LEVEL_COLORS.get(item.level, LEVEL_COLORS["error"]).name()
            detail = f": {_escape(item.detail)}" if item.detail else ""
            line.setText(f"<span style='color:{color}'>●</span> <b>{_escape(item.name)}</b>{detail}")
            line.setToolTip(item.detail)
            line.setProperty("level", item.level)
        rest = len(ranked) - len(shown)
        for index in range(len(shown), HEALTH_ROWS):
            self.lines[index].setText(f"… and {rest} more (all ok)" if rest and index == len(shown) else "")
            self.lines[index].setProperty("level", None)
        if not items:
            self.lines[0].setText("<span style='color:#757575'>no health reported yet</span>")

    def line_for(self, name: str) -> QLabel | None:
        for line in self.lines:
            if f"<b>{_escape(name)}</b>" in line.text():
                return line
        return None


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SessionPanel(QGroupBox):
    """Who works and on what (typed before the first attempt), and the session's figures."""

    def __init__(self) -> None:
        super().__init__("Session")
        form = QFormLayout(self)
        form.setVerticalSpacing(2)
        self.operator = QLineEdit()
        self.operator.setPlaceholderText("your name")
        self.task = QLineEdit()
        self.task.setPlaceholderText("the task of this session")
        for field in (self.operator, self.task):
            field.setMaxLength(80)
        self.attempts = QLabel("0")
        self.verdicts = QLabel("—")
        self.success_rate = QLabel("—")
        self.interventions = QLabel("—")
        self.first_intervention = QLabel("—")
        form.addRow("operator", self.operator)
        form.addRow("task", self.task)
        form.addRow("attempts", self.attempts)
        form.addRow("✓ / ≈ / ✗", self.verdicts)
        form.addRow("success rate", self.success_rate)
        form.addRow("takeovers / attempt", self.interventions)
        form.addRow("first takeover after", self.first_intervention)

    def fix_height(self) -> None:
        """Fix the panel's height for its fonts as shown (call once it is in the window)."""
        self.setFixedHeight(self.sizeHint().height())

    def show_figures(self, figures: SessionFigures | None) -> None:
        if figures is None:
            return
        for field, value in ((self.operator, figures.operator), (self.task, figures.task)):
            if value and not field.hasFocus() and not field.text():
                field.setText(value)
                field.setCursorPosition(0)  # the start of a long task, not its end
                field.setToolTip(value)
        n = figures.attempts
        self.attempts.setText(str(n))
        self.verdicts.setText(f"{figures.successes} / {figures.near_successes} / {figures.failures}")
        self.verdicts.setToolTip("success / near success / failure")
        self.success_rate.setText(f"{100.0 * figures.successes / n:.0f} %" if n else "—")
        self.interventions.setText(f"{figures.interventions / n:.2f}" if n else "—")
        times = figures.first_intervention_s
        self.first_intervention.setText(f"{sum(times) / len(times):.1f} s (mean)" if times else "—")


class StatePlot(QWidget):
    """The commanded end-effector position (x, y, z) over the last :data:`PLOT_SECONDS`."""

    def __init__(self) -> None:
        super().__init__()
        self.samples: deque[tuple[float, np.ndarray]] = deque()
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setLabel("bottom", "seconds ago")
        self.plot.getAxis("left").setWidth(40)  # as the value strip's below, so the times line up
        self.plot.setXRange(-PLOT_SECONDS, 0.0, padding=0)
        self.plot.addLegend(offset=(6, 4), labelTextSize="8pt", colCount=3)
        self.curves = [
            self.plot.plot(name=axis, pen=pg.mkPen(color, width=2))
            for axis, color in (("x", "#c62828"), ("y", "#2e7d32"), ("z", "#1565c0"))
        ]
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.plot)

    def add(self, t: float, ee: np.ndarray | None) -> None:
        if ee is None or np.shape(ee) != (3,):
            return
        self.samples.append((t, np.asarray(ee, np.float64)))
        while self.samples and t - self.samples[0][0] > PLOT_SECONDS:
            self.samples.popleft()
        self._redraw(t)

    def clear(self) -> None:
        self.samples.clear()
        for curve in self.curves:
            curve.setData([], [])

    def _redraw(self, now: float) -> None:
        if not self.samples:
            return
        times = np.array([t - now for t, _ in self.samples])
        values = np.stack([v for _, v in self.samples])
        for axis, curve in enumerate(self.curves):
            curve.setData(times, values[:, axis])
