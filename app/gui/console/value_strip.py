"""The policy's value estimate, live: a strip under the robot plot and the alert when it drops.

A policy with a value model sends its estimate with each chunk (docs/policy.md, "The value
estimate"); the engine puts the latest one in every :class:`Status`. :class:`ValueStrip` plots it
over the last :data:`PLOT_SECONDS` with the alert threshold as a dashed line. :class:`ValueAlarm`
watches the statuses: while an attempt runs and the estimate is below ``[console] value_alert`` it
flashes a border on the mode banner (the banner keeps the mode's colour and word) and says why in a
line of its own. Neither changes any widget's size, so nothing moves when the alert comes or goes.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QObject, Qt, QTimer
from PyQt6.QtWidgets import QLabel, QVBoxLayout, QWidget

from takeover.app.engine.protocol import Status

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


class ValueStrip(QWidget):
    """The value estimate over the last :data:`PLOT_SECONDS` (empty for a policy without one)."""

    def __init__(self) -> None:
        super().__init__()
        self.samples: deque[tuple[float, float]] = deque()
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setXRange(-PLOT_SECONDS, 0.0, padding=0)
        self.plot.getPlotItem().hideAxis("bottom")
        self.plot.getAxis("left").setWidth(AXIS_WIDTH)  # its time axis lines up with the robot plot's
        self.curve = self.plot.plot(pen=pg.mkPen("#6a1b9a", width=2))
        dashed = pg.mkPen("#ff1744", width=1, style=Qt.PenStyle.DashLine)
        self.threshold = pg.InfiniteLine(angle=0, pen=dashed)
        self.threshold.setVisible(False)
        self.plot.addItem(self.threshold)
        self.setFixedHeight(STRIP_HEIGHT)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.plot)

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
