"""Fields that take the keyboard only while a person types in them: clicked, or focused by their
key (N for the notes, G for the step). Enter or Esc gives the keys back to the review, so a digit
typed there is text, and a digit typed anywhere else is a label."""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QKeyEvent
from PyQt6.QtWidgets import QLineEdit, QSpinBox

_LEAVE = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape)


class TextField(QLineEdit):
    """A line edit that takes focus on a click only and lets go on Enter or Esc."""

    def __init__(self) -> None:
        super().__init__()
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)

    def keyPressEvent(self, event: QKeyEvent | None) -> None:
        if event is not None and event.key() in _LEAVE:
            self.clearFocus()
            return
        super().keyPressEvent(event)


class NumberField(QSpinBox):
    """A spin box that takes focus on a click only; Enter applies the number typed
    (``editingFinished``) and lets go, Esc lets go."""

    def __init__(self) -> None:
        super().__init__()
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setKeyboardTracking(False)

    def keyPressEvent(self, event: QKeyEvent | None) -> None:
        if event is not None and event.key() in _LEAVE:
            if event.key() != Qt.Key.Key_Escape:
                self.interpretText()
                self.editingFinished.emit()
            self.clearFocus()
            return
        super().keyPressEvent(event)
