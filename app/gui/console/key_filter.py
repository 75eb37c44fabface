"""Window-wide keyboard teleop: track which keys are held and report every change.

The filter sits on the application, so it sees key presses before any button does (Space must
move the gripper, never click the focused button). It only reacts to keys aimed at its own
window, ignores auto-repeat, and leaves keys with Ctrl/Alt/Meta alone so menu shortcuts keep
working. When the window loses focus every held key is released: a key let go in another window
never reaches this one, and the robot must not keep moving on a key nobody holds. Keys typed
into a text field of the window (the operator's name, a note on an attempt) are text, not teleop.
"""

from __future__ import annotations

from PyQt6.QtCore import QEvent, QObject, Qt, pyqtSignal
from PyQt6.QtGui import QKeyEvent
from PyQt6.QtWidgets import QAbstractSpinBox, QLineEdit, QPlainTextEdit, QTextEdit, QWidget

_SPECIAL_KEYS: dict[Qt.Key, str] = {
    Qt.Key.Key_Space: "Space",
    Qt.Key.Key_Escape: "Escape",
    Qt.Key.Key_Up: "Up",
    Qt.Key.Key_Down: "Down",
    Qt.Key.Key_Left: "Left",
    Qt.Key.Key_Right: "Right",
    Qt.Key.Key_PageUp: "PageUp",
    Qt.Key.Key_PageDown: "PageDown",
    Qt.Key.Key_Shift: "Shift",
}

_TEXT_INPUTS = (QLineEdit, QTextEdit, QPlainTextEdit, QAbstractSpinBox)

_COMMAND_MODIFIERS = (
    Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.MetaModifier
)


def key_name(key: int) -> str | None:
    """The wire name of a Qt key ("W", "7", "Space", "Escape", ...), or None if not a teleop key."""
    if Qt.Key.Key_A.value <= key <= Qt.Key.Key_Z.value or Qt.Key.Key_0.value <= key <= Qt.Key.Key_9.value:
        return chr(key)
    try:
        return _SPECIAL_KEYS.get(Qt.Key(key))
    except ValueError:
        return None


class KeyboardTeleopFilter(QObject):
    """Event filter reporting the set of held teleop keys as ``keys_changed(tuple[str, ...])``.

    Install it on the ``QApplication`` with :meth:`attach` and remove it with :meth:`detach`.
    """

    keys_changed = pyqtSignal(tuple)

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self._window = window
        self._held: list[str] = []  # in press order, so the report is stable

    @property
    def held(self) -> tuple[str, ...]:
        return tuple(self._held)

    def release_all(self) -> None:
        if self._held:
            self._held.clear()
            self.keys_changed.emit(())

    def eventFilter(self, watched: QObject | None, event: QEvent | None) -> bool:
        if event is None:
            return False
        kind = event.type()
        if kind == QEvent.Type.WindowDeactivate and watched is self._window:
            self.release_all()
            return False
        if kind not in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
            return False
        if not isinstance(event, QKeyEvent) or not self._aimed_at_window(watched):
            return False
        name = key_name(event.key())
        if name is None:
            return False
        if kind == QEvent.Type.KeyPress and event.modifiers() & _COMMAND_MODIFIERS:
            return False  # Ctrl+S and friends are shortcuts, not teleop
        if event.isAutoRepeat():
            return True
        if kind == QEvent.Type.KeyPress:
            if name not in self._held:
                self._held.append(name)
                self.keys_changed.emit(tuple(self._held))
        elif name in self._held:
            self._held.remove(name)
            self.keys_changed.emit(tuple(self._held))
        return True

    def _aimed_at_window(self, watched: QObject | None) -> bool:
        if isinstance(watched, _TEXT_INPUTS):
            return False  # typing a note or a name is not driving the robot
        return isinstance(watched, QWidget) and watched.window() is self._window
