"""The operator console: renders the engine's status and sends the operator's commands.

It is a view only. Every button and key becomes a :class:`Command` to the engine; what the
robot does is decided by the engine's control loop, and the window shows whatever the next
status says. Buttons are enabled from the last status, so an impossible request is not offered.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

import numpy as np
from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QCloseEvent, QColor, QFont, QKeySequence, QShortcut
from PyQt6.QtWidgets import (
    QApplication,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from takeover.app.engine.protocol import Command, CommandName, Frame, Outcome, Status
from takeover.app.gui.console.camera_health import CameraCaption
from takeover.app.gui.console.camera_view import CameraView, CameraWall
from takeover.app.gui.console.command_thread import NOT_ANSWERING
from takeover.app.gui.console.engine_link import EngineLink
from takeover.app.gui.console.key_filter import KeyboardTeleopFilter

MODE_COLORS: dict[str, QColor] = {
    "AUTONOMOUS": QColor("#2e7d32"),
    "HUMAN": QColor("#e65100"),
    "RAMP": QColor("#1565c0"),
    "HOLD": QColor("#c62828"),
    "ESTOP": QColor("#b71c1c"),
}
NO_ENGINE_COLOR = QColor("#424242")
NO_ENGINE_TEXT = "NO ENGINE"
"""The banner before the first status."""
NOT_ANSWERING_TEXT = "ENGINE NOT ANSWERING"
"""The banner when statuses stopped: nothing else on screen is current."""
UNKNOWN_MODE_COLOR = QColor("#616161")
FRAME_STALE_S = 1.0
PREVIEW_SIZE = (200, 150)
"""Smallest size of a free-running camera's preview (its height is fixed)."""
QUIT_TIMEOUT_MS = 300
DISCARD_CONFIRM_MS = 3000
"""Discard asks for a second click within this long: a running attempt is not thrown away by one slip."""
DISCARD_TEXT = "Discard episode"
DISCARD_CONFIRM_TEXT = "Click again to discard"
KEYS_TIMEOUT_MS = 200
CloseChoice = Literal["quit", "detach", "cancel"]
"""What closing the window does: stop the engine, leave it running (detach), or stay open."""

TELEOP_LEGEND: tuple[tuple[str, str], ...] = (
    ("W / S", "forward / back"),
    ("A / D", "left / right"),
    ("R / F", "up / down"),
    ("Space", "gripper"),
    ("T", "take over"),
    ("H", "hand back"),
    ("Esc", "hold"),
)
BUTTON_SHORTCUTS: dict[str, str] = {
    "start": "Ctrl+N",
    "stop": "Ctrl+E",
    "success": "Ctrl+S",
    "failure": "Ctrl+F",
}


def mode_color(mode: str) -> QColor:
    return MODE_COLORS.get(mode, UNKNOWN_MODE_COLOR)


def format_timing(timing: dict[str, float]) -> str:
    """'period_ms': 20.1 -> 'period 20.1 ms'; other figures as 'name value'."""
    parts = []
    for key, value in timing.items():
        if key.endswith("_ms"):
            parts.append(f"{key[:-3].replace('_', ' ')} {value:.1f} ms")
        else:
            parts.append(f"{key.replace('_', ' ')} {value:g}")
    if not parts:
        return "—"
    lines = ("     ".join(parts[i : i + 2]) for i in range(0, len(parts), 2))
    return "\n".join(lines)


class MainWindow(QMainWindow):
    """The console window. Call ``link.start()`` and ``show()`` after constructing it."""

    settings_requested = pyqtSignal()
    """The operator asked for the settings; the console's front end opens the dialog
    (app/gui/console/session.py)."""

    def __init__(self, link: EngineLink, title: str = "Takeover") -> None:
        super().__init__()
        self.link = link
        self.close_choice: Callable[[], CloseChoice] | None = None
        """Asked when the window closes (a console attached to an engine it did not start asks
        the operator); None: 'quit', the engine ends with its console."""
        self.status: Status | None = None
        self._frame_at: float | None = None
        self._closed = False
        self.setWindowTitle(title)
        self.resize(1200, 760)

        self.mode_label = self._make_mode_label()
        self.camera_caption = QLabel("camera")
        self.camera_caption.setObjectName("cameraCaption")
        self.camera = CameraView()
        self.cameras = CameraWall(self.camera)
        """Every camera of the station side by side (frames from the engine's frame socket)."""
        self.preview_strip = QHBoxLayout()
        self.previews: dict[str, CameraView] = {}
        """One small live view per free-running camera, made when its first frame arrives."""
        self._preview_at: dict[str, float] = {}
        self.preview_captions: dict[str, CameraCaption] = {}
        """Each preview's caption: the camera's name, in red with what is wrong while it is down."""
        self.episode_value = QLabel("—")
        self.step_value = QLabel("—")
        self.done_value = QLabel("—")
        self.success_value = QLabel("—")
        self.timing_value = QLabel("—")
        self.connection_label = QLabel()
        self.message_label = QLabel("")

        self.start_button = self._button("Start episode", self._start)
        self.stop_button = self._button("Stop episode", self._stop)
        self.takeover_button = self._button("Take over", lambda: self._command(CommandName.TAKEOVER))
        self.handback_button = self._button("Hand back", lambda: self._command(CommandName.HANDBACK))
        self.success_button = self._button("Success", lambda: self._stop("success"))
        self.failure_button = self._button("Failure", lambda: self._stop("failure"))
        self.discard_button = self._button(DISCARD_TEXT, self._discard)
        self.discard_button.setObjectName("discardButton")
        self._discard_timer = QTimer(self)
        self._discard_timer.setSingleShot(True)
        self._discard_timer.setInterval(DISCARD_CONFIRM_MS)
        self._discard_timer.timeout.connect(self._disarm_discard)
        self.hold_button = self._button("Hold", lambda: self._command(CommandName.HOLD))
        self.resume_button = self._button("Resume", lambda: self._command(CommandName.RESUME))
        self.estop_button = self._button("E-STOP", lambda: self._command(CommandName.ESTOP))
        self.reset_button = self._button("Reset e-stop", lambda: self._command(CommandName.RESET_ESTOP))
        self.estop_button.setObjectName("estopButton")
        self.success_button.setObjectName("successButton")
        self.failure_button.setObjectName("failureButton")
        self.hold_button.setObjectName("holdButton")

        self.setCentralWidget(self._build_layout())
        self.statusBar().addWidget(self.message_label, 1)  # type: ignore[union-attr]
        self.statusBar().addPermanentWidget(self.connection_label)  # type: ignore[union-attr]
        self._apply_style()
        self._install_shortcuts()

        self.key_filter = KeyboardTeleopFilter(self)
        self.key_filter.keys_changed.connect(self._send_keys)
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self.key_filter)

        self._frame_timer = QTimer(self)
        self._frame_timer.setInterval(250)
        self._frame_timer.timeout.connect(self._check_frame_age)
        self._frame_timer.start()

        link.status_received.connect(self.show_status)
        link.frame_received.connect(self.show_frame)
        link.error.connect(self.show_message)
        link.connection_lost.connect(self._on_connection_lost)
        link.connection_ok.connect(self._on_connection_ok)
        self._on_connection_lost(initial=True)

    # ------------------------------------------------------------------ layout
    def _make_mode_label(self) -> QLabel:
        label = QLabel(NO_ENGINE_TEXT)
        label.setObjectName("modeLabel")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = QFont(label.font())
        font.setPixelSize(56)
        font.setBold(True)
        label.setFont(font)
        label.setMinimumHeight(96)
        return label

    def _button(self, text: str, handler: Callable[[], None]) -> QPushButton:
        button = QPushButton(text)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys belong to teleop, not to buttons
        button.setMinimumHeight(60)
        button.clicked.connect(lambda _checked=False: handler())  # drop 'checked', never an argument
        return button

    def _build_layout(self) -> QWidget:
        camera_box = QVBoxLayout()
        camera_box.addWidget(self.camera_caption)
        camera_box.addWidget(self.cameras, 1)
        camera_box.addLayout(self.preview_strip)
        camera_box.addWidget(self._legend())

        episode = QGroupBox("Episode")
        form = QFormLayout(episode)
        form.addRow("id", self.episode_value)
        form.addRow("step", self.step_value)
        form.addRow("episodes done", self.done_value)
        form.addRow("station success", self.success_value)

        timing = QGroupBox("Control loop")
        QVBoxLayout(timing).addWidget(self.timing_value)
        self.readouts = (episode, timing)
        """Greyed out while the engine is not answering: their figures are old."""

        controls = QGroupBox("Controls")
        grid = QGridLayout(controls)
        pairs = (
            (self.start_button, self.stop_button),
            (self.takeover_button, self.handback_button),
            (self.success_button, self.failure_button),
            (self.hold_button, self.resume_button),
            (self.estop_button, self.reset_button),
        )
        for row, (left, right) in enumerate(pairs):
            grid.addWidget(left, row, 0)
            grid.addWidget(right, row, 1)
        grid.addWidget(self.discard_button, len(pairs), 0, 1, 2)

        side = QVBoxLayout()
        side.addWidget(episode)
        side.addWidget(timing)
        side.addWidget(controls)
        side.addStretch(1)
        side_widget = QWidget()
        side_widget.setLayout(side)
        side_widget.setFixedWidth(340)

        body = QHBoxLayout()
        body.addLayout(camera_box, 1)
        body.addWidget(side_widget)
        root = QVBoxLayout()
        root.addWidget(self.mode_label)
        root.addLayout(body, 1)
        central = QWidget()
        central.setLayout(root)
        return central

    def _legend(self) -> QGroupBox:
        box = QGroupBox("Keys")
        grid = QGridLayout(box)
        grid.setVerticalSpacing(2)
        grid.setHorizontalSpacing(10)
        shortcuts = (
            (BUTTON_SHORTCUTS["start"], "start episode"),
            (BUTTON_SHORTCUTS["stop"], "stop episode"),
            (BUTTON_SHORTCUTS["success"], "success"),
            (BUTTON_SHORTCUTS["failure"], "failure"),
        )
        per_row = 4
        teleop_rows = -(-len(TELEOP_LEGEND) // per_row)  # shortcuts start on a row of their own
        placed = [(i, entry) for i, entry in enumerate(TELEOP_LEGEND)]
        placed += [(teleop_rows * per_row + i, entry) for i, entry in enumerate(shortcuts)]
        for index, (key, meaning) in placed:
            row, column = divmod(index, per_row)
            grid.addWidget(QLabel(f"<b>{key}</b>"), row, 2 * column)
            grid.addWidget(QLabel(meaning), row, 2 * column + 1)
        for column in range(per_row):
            grid.setColumnStretch(2 * column + 1, 1)
        return box

    def _apply_style(self) -> None:
        base = QFont(self.font())
        base.setPointSize(11)
        self.setFont(base)
        # Fonts are set as QFonts; a style sheet with font properties would reset the size.
        value_font = QFont(base)
        value_font.setPointSize(14)
        value_font.setBold(True)
        for value in (self.episode_value, self.step_value, self.done_value, self.success_value):
            value.setFont(value_font)
        bold = QFont(base)
        bold.setBold(True)
        for widget in (self.connection_label, self.hold_button, self.timing_value):
            widget.setFont(bold)
        self.setStyleSheet(
            "QLabel#cameraCaption { color: #616161; }"
            "QPushButton#successButton:enabled { background: #c8e6c9; }"
            "QPushButton#failureButton:enabled { background: #ffcdd2; }"
            "QPushButton#holdButton:enabled { background: #c62828; color: white; }"
            "QPushButton#estopButton:enabled { background: #7f0000; color: white; font-weight: bold; }"
            'QPushButton#discardButton[armed="true"] { background: #ffb300; font-weight: bold; }'
        )

    def _install_shortcuts(self) -> None:
        targets = {
            "start": self.start_button,
            "stop": self.stop_button,
            "success": self.success_button,
            "failure": self.failure_button,
        }
        for key, button in targets.items():
            shortcut = QShortcut(QKeySequence(BUTTON_SHORTCUTS[key]), self)
            shortcut.activated.connect(button.animateClick)

    # ---------------------------------------------------------------- commands
    def _command(self, name: CommandName, outcome: Outcome = "") -> None:
        self.link.send(Command(name, outcome=outcome))

    def _start(self) -> None:
        self._command(CommandName.START_EPISODE)

    def _stop(self, outcome: Outcome = "") -> None:
        self._command(CommandName.STOP_EPISODE, outcome)

    def _discard(self) -> None:
        """First click arms the button for DISCARD_CONFIRM_MS; a second click discards the
        running attempt (nothing of it is kept) so that it can be recorded again."""
        if self._discard_timer.isActive():
            self._disarm_discard()
            self._command(CommandName.DISCARD_EPISODE)
            return
        self._discard_timer.start()
        self.discard_button.setText(DISCARD_CONFIRM_TEXT)
        self._set_armed(True)
        self.show_message("click Discard again within 3 s to throw this attempt away")

    def _disarm_discard(self) -> None:
        self._discard_timer.stop()
        self.discard_button.setText(DISCARD_TEXT)
        self._set_armed(False)

    def _set_armed(self, armed: bool) -> None:
        self.discard_button.setProperty("armed", armed)
        style = self.discard_button.style()
        if style is not None:  # re-apply the style sheet for the new property value
            style.unpolish(self.discard_button)
            style.polish(self.discard_button)

    def _send_keys(self, keys: tuple[str, ...]) -> None:
        if self.link.running:
            self.link.send(Command(CommandName.KEYS, keys=keys), timeout_ms=KEYS_TIMEOUT_MS)

    # ------------------------------------------------------------------ status
    def show_status(self, status: Status) -> None:
        self.status = status
        self._show_mode(status.mode)
        if status.episode_active:
            self.episode_value.setText(status.episode_id)
        else:
            self.episode_value.setText(f"none running (last: {status.episode_id or '—'})")
        self.step_value.setText(str(status.step))
        self.done_value.setText(str(status.episodes_done))
        self.success_value.setText("YES" if status.success else "no")
        self.success_value.setStyleSheet("color: #2e7d32;" if status.success else "")
        self.timing_value.setText(format_timing(status.timing))
        self.camera_caption.setText(f"camera: {status.camera}" if status.camera else "camera")
        if status.image is not None:
            try:
                self.camera.set_frame(status.image)
                self._frame_at = time.monotonic()
            except ValueError as exc:
                self.show_message(str(exc))
        self._show_previews(status.previews)
        for name, health in status.camera_health.items():
            if name not in self.previews:
                self._add_preview(name)  # a camera that died before its first frame is shown too
            self.preview_captions[name].set_health(health)
        if status.message:
            self.show_message(status.message)
        self._update_buttons()

    def show_frame(self, frame: Frame) -> None:
        """A camera frame from the engine's frame socket, in that camera's view."""
        try:
            view = self.cameras.show_frame(frame.camera, frame.image, frame.seq)
        except ValueError as exc:
            self.show_message(f"camera {frame.camera}: {exc}")
            return
        if view is self.camera:
            self._frame_at = time.monotonic()

    def _show_previews(self, frames: dict[str, np.ndarray]) -> None:
        for name, frame in frames.items():
            view = self.previews.get(name)
            if view is None:
                view = self._add_preview(name)
            try:
                view.set_frame(frame)
                self._preview_at[name] = time.monotonic()
            except ValueError as exc:
                self.show_message(f"camera {name}: {exc}")
        for name, view in self.previews.items():
            if name not in frames:
                view.set_stale(True)

    def _add_preview(self, name: str) -> CameraView:
        view = CameraView()
        view.setMinimumSize(PREVIEW_SIZE[0], PREVIEW_SIZE[1])
        view.setFixedHeight(PREVIEW_SIZE[1])
        view.setFont(self.font())
        caption = self.preview_captions[name] = CameraCaption(name)
        holder = QWidget()
        box = QVBoxLayout(holder)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        box.addWidget(caption)
        box.addWidget(view)
        holder.setFixedHeight(PREVIEW_SIZE[1] + caption.sizeHint().height() + 2)
        self.preview_strip.addWidget(holder)
        holder.show()  # made after the window was shown
        self.previews[name] = view
        return view

    def show_message(self, text: str) -> None:
        self.message_label.setText(text)

    def _show_mode(self, text: str, color: QColor | None = None) -> None:
        fill = color if color is not None else mode_color(text)
        self.mode_label.setText(text)
        self.mode_label.setStyleSheet(
            f"QLabel#modeLabel {{ background: {fill.name()}; color: white; border-radius: 6px; }}"
        )

    def _update_buttons(self) -> None:
        status = self.status if self.link.connected else None
        active = status is not None and status.episode_active
        mode = status.mode if status is not None else ""
        self.start_button.setEnabled(status is not None and not status.episode_active)
        self.stop_button.setEnabled(active)
        self.success_button.setEnabled(active)
        self.failure_button.setEnabled(active)
        self.discard_button.setEnabled(active)
        if not active and self._discard_timer.isActive():
            self._disarm_discard()
        self.takeover_button.setEnabled(active and mode in ("AUTONOMOUS", "RAMP", "HOLD"))
        self.handback_button.setEnabled(active and mode == "HUMAN")
        self.resume_button.setEnabled(status is not None and mode == "HOLD")
        # Hold and e-stop stay available whenever they might help: never grey out a stop button.
        self.hold_button.setEnabled(mode not in ("HOLD", "ESTOP"))
        self.estop_button.setEnabled(mode != "ESTOP")
        self.reset_button.setEnabled(status is not None and mode == "ESTOP")

    def _check_frame_age(self) -> None:
        now = time.monotonic()
        if self._frame_at is None or now - self._frame_at > FRAME_STALE_S:
            self.camera.set_stale(True)
        for name, view in self.previews.items():
            if now - self._preview_at.get(name, 0.0) > FRAME_STALE_S:
                view.set_stale(True)

    def _on_connection_lost(self, initial: bool = False) -> None:
        self.camera.set_stale(True)
        for box in self.readouts:
            box.setEnabled(False)
        if initial:
            self._show_mode(NO_ENGINE_TEXT, NO_ENGINE_COLOR)
            self.connection_label.setText("engine: connecting…")
        else:
            self._show_mode(NOT_ANSWERING_TEXT, NO_ENGINE_COLOR)
            self.connection_label.setText("engine: NOT ANSWERING")
            self.show_message(f"{NOT_ANSWERING}: no status for {self.link.stale_after_s:g} s")
        self.connection_label.setStyleSheet("color: #c62828;")
        self._update_buttons()

    def _on_connection_ok(self) -> None:
        if self.connection_label.text() == "engine: NOT ANSWERING":
            self.show_message("engine answering again")
        self.connection_label.setText("engine: connected")
        self.connection_label.setStyleSheet("color: #2e7d32;")
        for box in self.readouts:
            box.setEnabled(True)

    # ------------------------------------------------------------------- close
    def closeEvent(self, event: QCloseEvent | None) -> None:
        if not self._closed:
            choice = self.close_choice() if self.close_choice is not None else "quit"
            if choice == "cancel":
                if event is not None:
                    event.ignore()
                return
            self._closed = True
            self.key_filter.release_all()
            app = QApplication.instance()
            if app is not None:
                app.removeEventFilter(self.key_filter)
            self._frame_timer.stop()
            if self.link.running:
                last = CommandName.DETACH if choice == "detach" else CommandName.QUIT
                self.link.send(Command(last), timeout_ms=QUIT_TIMEOUT_MS)
            self.link.stop()
        super().closeEvent(event)
