"""Every key of the console in one table, and the help overlay made from it.

The window installs its shortcuts from :data:`SHORTCUTS` and the help overlay (F1) lists
:data:`SHORTCUTS` and :data:`TELEOP_KEYS`, so the help can never disagree with what the keys do.

Teleop keys (letters, Space, Escape) are held down to drive the robot and go to the engine as
the set of keys held (key_filter.py); command shortcuts carry Ctrl or are function keys, so
that no teleop key ever ends, labels or e-stops an attempt by accident. The e-stop key is F12:
not a teleop key, alone in its corner of the keyboard, and needs no modifier.
"""

from __future__ import annotations

from dataclasses import dataclass

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QMouseEvent
from PyQt6.QtWidgets import QFrame, QGridLayout, QLabel, QPushButton, QVBoxLayout, QWidget


@dataclass(frozen=True)
class Shortcut:
    key: str
    """As QKeySequence reads it ('Ctrl+N', 'F12')."""
    action: str
    """The window's name for what it does ('start', 'estop', ...)."""
    meaning: str


SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut("Ctrl+N", "start", "start an attempt"),
    Shortcut("Ctrl+E", "stop", "stop the attempt (the station's success flag decides)"),
    Shortcut("Ctrl+S", "success", "end the attempt as success"),
    Shortcut("Ctrl+J", "near_success", "end the attempt as near success"),
    Shortcut("Ctrl+F", "failure", "end the attempt as failure"),
    Shortcut("F12", "estop", "E-STOP: latched, the robot holds until Reset"),
    Shortcut("Ctrl+,", "settings", "open the settings"),
    Shortcut("Ctrl+L", "value_alert", "set the value alert (alert below a value estimate)"),
    Shortcut("F1", "help", "show / hide this help"),
)
ESTOP_KEY = next(s.key for s in SHORTCUTS if s.action == "estop")
HELP_KEY = next(s.key for s in SHORTCUTS if s.action == "help")

TELEOP_KEYS: tuple[tuple[str, str], ...] = (
    ("W / S", "forward / back (while held)"),
    ("A / D", "left / right"),
    ("R / F", "up / down"),
    ("Space", "gripper open / close"),
    ("T", "take over (only while an attempt runs)"),
    ("H", "hand back to the policy"),
    ("Esc", "hold: the robot stops where it is"),
)


def shortcut_key(action: str) -> str:
    return next(s.key for s in SHORTCUTS if s.action == action)


class HelpOverlay(QFrame):
    """A panel over the window listing every key; F1 or a click closes it."""

    closed = pyqtSignal()

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("helpOverlay")
        self.setStyleSheet(
            "QFrame#helpOverlay { background: rgb(24, 26, 34); border-radius: 10px; }"
            "QFrame#helpOverlay QLabel { color: white; }"
        )
        box = QVBoxLayout(self)
        box.setContentsMargins(28, 20, 28, 20)
        title = QLabel("<h2>Keys</h2>")
        box.addWidget(title)
        grid = QGridLayout()
        grid.setHorizontalSpacing(18)
        grid.setVerticalSpacing(4)
        self.rows: list[tuple[str, str]] = []
        """(key, meaning) as listed, commands first, then teleop keys."""
        row = 0
        for heading, entries in (
            ("Commands", tuple((s.key, s.meaning) for s in SHORTCUTS)),
            ("Driving (keyboard teleop)", TELEOP_KEYS),
        ):
            grid.addWidget(QLabel(f"<b>{heading}</b>"), row, 0, 1, 2)
            row += 1
            for key, meaning in entries:
                grid.addWidget(QLabel(f"<b>{key}</b>"), row, 0)
                grid.addWidget(QLabel(meaning), row, 1)
                self.rows.append((key, meaning))
                row += 1
        box.addLayout(grid)
        hint = QLabel(f"{HELP_KEY} or a click closes this help.")
        hint.setWordWrap(True)
        box.addWidget(hint)
        close = QPushButton("Close")
        close.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        close.clicked.connect(lambda _checked=False: self.hide_overlay())
        box.addWidget(close, 0, Qt.AlignmentFlag.AlignRight)
        self.hide()

    def toggle(self) -> None:
        if self.isVisible():
            self.hide_overlay()
        else:
            self.show_overlay()

    def show_overlay(self) -> None:
        parent = self.parentWidget()
        if parent is not None:
            hint = self.sizeHint()
            width, height = min(hint.width(), parent.width() - 40), min(hint.height(), parent.height() - 40)
            self.setGeometry((parent.width() - width) // 2, (parent.height() - height) // 2, width, height)
        self.show()
        self.raise_()

    def hide_overlay(self) -> None:
        self.hide()
        self.closed.emit()

    def mousePressEvent(self, event: QMouseEvent | None) -> None:
        self.hide_overlay()
