"""The policy's value estimate, live: a strip under the robot plot and the alert when it drops.

A policy with a value model sends its estimate with each chunk (docs/policy.md, "The value
estimate"); the engine puts the latest one in every :class:`Status`. :class:`ValueStrip` plots it
over the last :data:`PLOT_SECONDS` with the alert threshold as a dashed line. :class:`ValueAlarm`
watches the statuses: while an attempt runs and the estimate is below ``[console] value_alert`` it
flashes a border on the mode banner (the banner keeps the mode's colour and word) and says why in a
line of its own. Neither changes any widget's size, so nothing moves when the alert comes or goes.

The operator sets the threshold from the console, live (the engine's VALUE_ALERT command): a
right click on the strip offers "alert below here" at the height clicked, and
:class:`ValueAlertDialog` (the "alert" button beside the strip, or Ctrl+L) takes a number.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QObject, QPoint, Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from takeover.app.engine.protocol import Status
from takeover.app.gui.axis_ticks import keep_round_ticks

PLOT_SECONDS = 10.0
FLASH_MS = 400
"""The banner's border is on and off for this long each while the alert lasts."""
ALERT_BORDER = "border: 6px solid #ff1744;"
STRIP_HEIGHT = 46
AXIS_WIDTH = 40
"""Width of the left axis of the strip and of the robot plot above it."""


def value_alert_text(status: Status | None) -> str:
    """Why the console alerts now ('' when it does not): an attempt runs and the value estimate is
    below the configured threshold."""
    if status is None or not status.episode_active or status.value is None or status.value_alert is None:
        return ""
    if not status.value < status.value_alert:
        return ""
    return (
        f"value estimate {_signed(status.value)} below {_signed(status.value_alert)}: "
        "the policy may be failing"
    )


def _signed(x: float) -> str:
    return f"{x:.2f}".replace("-", "\N{MINUS SIGN}")


def alert_button_text(alert: float | None) -> str:
    """What the "alert" button beside the strip shows: the threshold, or that there is none."""
    return "off" if alert is None else f"below {_signed(alert)}"


def parse_threshold(text: str) -> tuple[float | None, str]:
    """A typed threshold: ``(value, '')``, ``(None, '')`` for an empty field (no alert), or
    ``(None, why)`` for text that is not a finite number. The minus sign the console shows is
    taken as a minus."""
    text = text.strip().replace("\N{MINUS SIGN}", "-").replace(",", ".")
    if not text:
        return None, ""
    try:
        value = float(text)
    except ValueError:
        return None, f"not a number: {text!r}"
    if not np.isfinite(value):
        return None, f"must be a finite number, got {text!r}"
    return value, ""


class ValueStrip(QWidget):
    """The value estimate over the last :data:`PLOT_SECONDS` (empty for a policy without one).
    A right click offers to alert below the height clicked, to type a threshold, or no alert."""

    threshold_chosen = pyqtSignal(object)
    """The operator chose a threshold from the menu: a float, or None for no alert."""
    dialog_requested = pyqtSignal()
    """The operator asked to type a threshold."""

    def __init__(self) -> None:
        super().__init__()
        self.menu: QMenu | None = None
        """The menu of the latest right click (kept for tests; None before the first)."""
        self.samples: deque[tuple[float, float]] = deque()
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setXRange(-PLOT_SECONDS, 0.0, padding=0)
        self.plot.getPlotItem().hideAxis("bottom")
        self.plot.getAxis("left").setWidth(AXIS_WIDTH)  # its time axis lines up with the robot plot's
        keep_round_ticks(self.plot.getPlotItem(), most=2)  # 46 pixels: room for two labels
        self.curve = self.plot.plot(pen=pg.mkPen("#6a1b9a", width=2))
        dashed = pg.mkPen("#ff1744", width=1, style=Qt.PenStyle.DashLine)
        self.threshold = pg.InfiniteLine(angle=0, pen=dashed)
        self.threshold.setVisible(False)
        self.plot.addItem(self.threshold)
        self.setFixedHeight(STRIP_HEIGHT)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.plot)
        self.plot.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.plot.customContextMenuRequested.connect(self._menu_at)

    def value_at(self, pos: QPoint) -> float:
        """The value at the height of ``pos`` (in the plot's coordinates), to two decimals."""
        scene = self.plot.mapToScene(pos)
        return round(float(self.plot.getPlotItem().vb.mapSceneToView(scene).y()), 2)

    def _menu_at(self, pos: QPoint) -> None:
        here = self.value_at(pos)
        menu = QMenu(self)
        menu.addAction(f"Alert below {_signed(here)} (here)", lambda: self.threshold_chosen.emit(here))
        menu.addAction("Alert below a value…", self.dialog_requested.emit)
        off = menu.addAction("No value alert", lambda: self.threshold_chosen.emit(None))
        if off is not None:
            off.setEnabled(self.threshold.isVisible())  # an alert is set
        self.menu = menu
        menu.popup(self.plot.mapToGlobal(pos))

    def set_alert(self, alert: float | None) -> None:
        """Show the threshold as a dashed line (None: no line)."""
        self.threshold.setVisible(alert is not None)
        if alert is not None:
            self.threshold.setValue(alert)

    def add(self, t: float, value: float | None) -> None:
        if value is None or not np.isfinite(value):
            return
        self.samples.append((t, float(value)))
        while self.samples and t - self.samples[0][0] > PLOT_SECONDS:
            self.samples.popleft()
        times = np.array([s - t for s, _ in self.samples])
        self.curve.setData(times, np.array([v for _, v in self.samples]))

    def clear(self) -> None:
        self.samples.clear()
        self.curve.setData([], [])


class ValueAlarm(QObject):
    """Flashes ``banner`` and writes the reason into ``reason`` while :func:`value_alert_text` says
    so. Call :meth:`show` after the banner was styled for the status (it keeps that style)."""

    def __init__(self, banner: QLabel, reason: QLabel) -> None:
        super().__init__(banner)
        self.banner = banner
        self.reason = reason
        self.text = ""
        """The reason shown now ('' while there is no alert)."""
        self._style = banner.styleSheet()
        """The banner's own style (the window's, for the mode), without the alert border."""
        self._applied = self._style
        self._lit = False
        self._timer = QTimer(self)
        self._timer.setInterval(FLASH_MS)
        self._timer.timeout.connect(self._flash)

    @property
    def lit(self) -> bool:
        """The banner's alert border is showing now."""
        return self._lit

    def show(self, status: Status | None) -> None:
        """Start, keep or end the alert for this status (the banner was just styled for it)."""
        if self.banner.styleSheet() != self._applied:  # restyled by the window since
            self._style = self.banner.styleSheet()
        self.text = value_alert_text(status)
        self.reason.setText(self.text)
        if not self.text:
            self._timer.stop()
            self._lit = False
        elif not self._timer.isActive():
            self._lit = True
            self._timer.start()
        self._apply()

    def _flash(self) -> None:
        self._lit = not self._lit
        self._apply()

    def _apply(self) -> None:
        base = self._style
        if self._lit and base.rstrip().endswith("}"):
            base = base.rstrip()[:-1] + f" {ALERT_BORDER} }}"
        self._applied = base
        self.banner.setStyleSheet(base)


class ValueAlertDialog(QDialog):
    """Asks for the threshold: a number, or an empty field (or "No alert") for none. One dialog
    serves every request: :meth:`prepare` it, then ``show()``; after ``accepted``,
    :attr:`threshold` is the choice."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Value alert")
        self.setMinimumWidth(380)
        self.threshold: float | None = None
        box = QVBoxLayout(self)
        self.intro = QLabel("")
        self.intro.setWordWrap(True)
        box.addWidget(self.intro)
        self.field = QLineEdit("")
        self.field.setPlaceholderText("e.g. -0.8 (empty: no alert)")
        box.addWidget(self.field)
        self.problem = QLabel("")
        self.problem.setStyleSheet("color: #c62828;")
        box.addWidget(self.problem)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        assert self.ok is not None
        self.ok.setText("Set")
        self.off = QPushButton("No alert")
        buttons.addButton(self.off, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.accepted.connect(self._accept_typed)
        buttons.rejected.connect(self.reject)
        self.off.clicked.connect(self._accept_off)
        box.addWidget(buttons)
        self.field.textChanged.connect(self._check)
        self.prepare(None, None)

    def prepare(self, current: float | None, latest: float | None) -> None:
        """Show ``current`` (the threshold now) to edit, and the ``latest`` estimate if any."""
        said = (
            "Alert while the policy's value estimate is below this during an attempt: the banner "
            "flashes and says why. Empty: no alert."
        )
        if latest is not None:
            said += f"\nThe latest estimate: {_signed(latest)}."
        self.intro.setText(said)
        self.threshold = current
        self.field.setText("" if current is None else f"{current:g}")
        self.field.selectAll()
        self.field.setFocus()
        self._check()

    def _check(self) -> None:
        _, problem = parse_threshold(self.field.text())
        self.problem.setText(problem)
        assert self.ok is not None
        self.ok.setEnabled(not problem)

    def _accept_typed(self) -> None:
        value, problem = parse_threshold(self.field.text())
        if problem:  # Enter in the field with a bad number: say so, stay open
            self.problem.setText(problem)
            return
        self.threshold = value
        self.accept()

    def _accept_off(self) -> None:
        self.threshold = None
        self.accept()
