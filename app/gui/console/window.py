"""The operator console: renders the engine's status and sends the operator's commands.

It is a view only. Every button and key becomes a :class:`Command` to the engine; what the
robot does is decided by the engine's control loop, and the window shows whatever the next
status says. Buttons are enabled from the last status, so an impossible request is not offered,
and a request the engine refuses is shown, in red under the banner, for a few seconds.

The layout never moves under the pointer: every panel has a fixed size whatever it shows, and
the buttons that end an attempt (Stop, Success / Near success / Failure, Discard, Re-record) sit
far from Start, in rows of their own that are always there (greyed out between attempts).
They also ignore clicks for half a second after they become enabled (panels.GuardedButton): a
double-click on Start starts an attempt and nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

import numpy as np
from PyQt6.QtCore import QEventLoop, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QCloseEvent, QColor, QFont, QKeySequence, QResizeEvent, QShortcut
from PyQt6.QtWidgets import (
    QApplication,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QStackedLayout,
    QVBoxLayout,
    QWidget,
)

from takeover.app.engine.protocol import MAX_NOTE_CHARS, Command, CommandName, Frame, Outcome, Status
from takeover.app.gui.console.camera_health import CameraCaption
from takeover.app.gui.console.camera_view import CameraView, CameraWall
from takeover.app.gui.console.close_attempt import ANSWER_TIMEOUT_S, ask_attempt_end, attempt_end_command
from takeover.app.gui.console.command_thread import NOT_ANSWERING
from takeover.app.gui.console.engine_link import EngineLink
from takeover.app.gui.console.key_filter import KeyboardTeleopFilter
from takeover.app.gui.console.panels import (
    GuardedButton,
    HealthPanel,
    ProblemPanel,
    SessionPanel,
    StatePlot,
    clock_texts,
)
from takeover.app.gui.console.shortcuts import SHORTCUTS, HelpOverlay, shortcut_key
from takeover.app.gui.console.value_strip import (
    ValueAlarm,
    ValueAlertDialog,
    ValueStrip,
    alert_button_text,
)

MODE_COLORS: dict[str, QColor] = {
    "AUTONOMOUS": QColor("#2e7d32"),
    "HUMAN": QColor("#6a1b9a"),
    "RAMP": QColor("#1565c0"),
    "HOLD": QColor("#ffb300"),
    "ESTOP": QColor("#d50000"),
    "IDLE": QColor("#546e7a"),
}
"""Banner colours: HOLD is amber (dark text), ESTOP red; no two modes share a colour family."""
DARK_TEXT_MODES = frozenset({"HOLD"})
NO_ENGINE_COLOR = QColor("#424242")
NO_ENGINE_TEXT = "NO ENGINE"
"""The banner before the first status."""
NOT_ANSWERING_TEXT = "ENGINE NOT ANSWERING"
"""The banner when statuses stopped: nothing else on screen is current."""
START_FAILED_TEXT = "STATION DID NOT START"
UNKNOWN_MODE_COLOR = QColor("#616161")
FRAME_STALE_S = 1.0
PREVIEW_SIZE = (200, 150)
"""Smallest size of a camera view."""
QUIT_TIMEOUT_MS = 300
END_WAIT_S = 3.0
"""Closing mid-attempt: how long the window waits for the engine to end the attempt as chosen."""
DISCARD_CONFIRM_MS = 3000
"""Discard asks for a second click within this long: a running attempt is not thrown away by one slip."""
DISCARD_TEXT = "Discard"
DISCARD_CONFIRM_TEXT = "Click again to discard"
REFUSAL_SHOWN_MS = 5000
"""How long a refusal stays under the banner."""
KEYS_TIMEOUT_MS = 200
BUTTON_HEIGHT = 36
CloseChoice = Literal["quit", "detach", "cancel"]
"""What closing the window does: stop the engine, leave it running (detach), or stay open."""


COMMAND_WORDS: dict[str, str] = {
    "start_episode": "start",
    "stop_episode": "end the attempt",
    "discard_episode": "discard",
    "takeover": "take over",
    "handback": "hand back",
    "hold": "hold",
    "resume": "resume",
    "keys": "keys",
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


REMEDY_COMMANDS: dict[str, CommandName] = {
    "retry": CommandName.RETRY,
    "keyboard": CommandName.USE_KEYBOARD,
}
"""A failed start's remedies the engine carries out ('settings' opens the dialog instead)."""


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
        self.close_answer_timeout_s = ANSWER_TIMEOUT_S
        self.end_wait_s = END_WAIT_S
        """Closing mid-attempt asks what becomes of the attempt; no answer in this long: interrupted."""
        self.status: Status | None = None
        self._keys_sent: tuple[str, ...] = ()
        """The held keys the engine was last told about."""
        self._frame_at: float | None = None
        self._closed = False
        self._unattended = False
        self.setWindowTitle(title)
        self.resize(1366, 740)

        self.mode_label = self._make_mode_label()
        self.value_alert_label = QLabel("")
        self.value_alarm = ValueAlarm(self.mode_label, self.value_alert_label)
        """Flashes the banner while the value estimate is below ``[console] value_alert``."""
        self.refusal_label = QLabel("")
        self.refusal_label.setObjectName("refusalLabel")
        self.instruction_label = QLabel("")
        self.instruction_label.setObjectName("instructionLabel")
        self._refusal_timer = QTimer(self)
        self._refusal_timer.setSingleShot(True)
        self._refusal_timer.setInterval(REFUSAL_SHOWN_MS)
        self._refusal_timer.timeout.connect(lambda: self.refusal_label.setText(""))

        self.camera_caption = CameraCaption("main")
        self.camera = CameraView()
        self.camera.setMinimumSize(PREVIEW_SIZE[0], PREVIEW_SIZE[1])
        self.camera_grid = QGridLayout()
        self._camera_holders: list[QWidget] = []
        self.camera_grid.setSpacing(6)
        self.cameras = CameraWall(self.camera, self._place_station_camera)
        """The station's cameras, each in its own view (frames from the engine's frame socket)."""
        self.previews: dict[str, CameraView] = {}
        """One live view per free-running camera, made when its first frame arrives."""
        self._preview_at: dict[str, float] = {}
        self.preview_captions: dict[str, CameraCaption] = {}
        """Each preview's caption: the camera's name, in red with what is wrong while it is down."""
        self.problem_panel = ProblemPanel()
        self.state_plot = StatePlot()
        self.value_strip = ValueStrip()
        """The policy's value estimate (a policy with a value model sends one with each chunk)."""
        self.gripper_value = QLabel("—")
        self.value_value = QLabel("—")
        """The latest value estimate in the attempt ('—': none)."""
        self.value_alert_label.setObjectName("valueAlertLabel")
        self.alert_button = QPushButton(alert_button_text(None))
        """Shows the value alert's threshold; a click asks for another (as Ctrl+L does)."""
        self.alert_button.setObjectName("valueAlertButton")
        self.alert_button.setToolTip(
            "Alert while the value estimate is below a threshold during an attempt "
            "(also: right click on the value strip, or Ctrl+L)"
        )
        self.alert_button.clicked.connect(self.ask_value_alert)
        self.value_strip.threshold_chosen.connect(self.set_value_alert)
        self.value_strip.dialog_requested.connect(self.ask_value_alert)
        self.value_alert_dialog: ValueAlertDialog | None = None
        """The value alert dialog, made at its first request and shown again for the next."""

        self.episode_value = QLabel("—")
        self.step_value = QLabel("—")
        self.time_value = QLabel("—")
        self.left_value = QLabel("—")
        self.held_value = QLabel("—")
        self.done_value = QLabel("—")
        self.success_value = QLabel("—")
        self.timing_value = QLabel("—")
        self.connection_label = QLabel()
        self.message_label = QLabel("")
        self.health_panel = HealthPanel()
        self.session_panel = SessionPanel()

        self.start_button = self._button("Start", self._start)
        self.stop_button = self._button("Stop", lambda: self._end(""), guarded=True)
        self.takeover_button = self._button("Take over", lambda: self._command(CommandName.TAKEOVER))
        self.handback_button = self._button("Hand back", lambda: self._command(CommandName.HANDBACK))
        self.success_button = self._button("Success", lambda: self._end("success"), guarded=True)
        self.near_success_button = self._button(
            "Near success", lambda: self._end("near_success"), guarded=True
        )
        self.failure_button = self._button("Failure", lambda: self._end("failure"), guarded=True)
        self.note_field = QLineEdit()
        self.note_field.setObjectName("noteField")
        self.note_field.setPlaceholderText("note (optional, saved with the label)")
        self.note_field.setMaxLength(MAX_NOTE_CHARS)
        self.note_field.returnPressed.connect(self.note_field.clearFocus)
        self.discard_button = self._button(DISCARD_TEXT, self._discard, guarded=True)
        self.discard_button.setObjectName("discardButton")
        self.rerecord_button = self._button("Re-record", self._rerecord, guarded=True)
        self._discard_timer = QTimer(self)
        self._discard_timer.setSingleShot(True)
        self._discard_timer.setInterval(DISCARD_CONFIRM_MS)
        self._discard_timer.timeout.connect(self._disarm_discard)
        self.hold_button = self._button("Hold", lambda: self._command(CommandName.HOLD))
        self.resume_button = self._button("Resume", lambda: self._command(CommandName.RESUME))
        self.estop_button = self._button(
            f"E-STOP  ({shortcut_key('estop')})", lambda: self._command(CommandName.ESTOP)
        )
        self.reset_button = self._button("Reset e-stop", lambda: self._command(CommandName.RESET_ESTOP))
        self.estop_button.setObjectName("estopButton")
        self.success_button.setObjectName("successButton")
        self.near_success_button.setObjectName("nearSuccessButton")
        self.failure_button.setObjectName("failureButton")
        self.hold_button.setObjectName("holdButton")
        self.label_buttons = (self.success_button, self.near_success_button, self.failure_button)

        self.setCentralWidget(self._build_layout())
        self.help_overlay = HelpOverlay(self.centralWidget() or self)
        self.statusBar().addWidget(self.message_label, 1)  # type: ignore[union-attr]
        self.statusBar().addPermanentWidget(self.connection_label)  # type: ignore[union-attr]
        self._apply_style()
        self._fix_sizes()
        self._install_shortcuts()
        self.problem_panel.retry.connect(lambda: self._remedy("retry"))
        self.problem_panel.keyboard.connect(lambda: self._remedy("keyboard"))
        self.problem_panel.settings.connect(self.settings_requested.emit)

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
        link.refused.connect(self._on_refused)
        link.connection_lost.connect(self._on_connection_lost)
        link.connection_ok.connect(self._on_connection_ok)
        self._on_connection_lost(initial=True)

    # ------------------------------------------------------------------ layout
    def _make_mode_label(self) -> QLabel:
        label = QLabel(NO_ENGINE_TEXT)
        label.setObjectName("modeLabel")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = QFont(label.font())
        font.setPixelSize(48)
        font.setBold(True)
        label.setFont(font)
        label.setFixedHeight(60)
        return label

    def _button(self, text: str, handler: Callable[[], None], guarded: bool = False) -> QPushButton:
        button: QPushButton = GuardedButton(text) if guarded else QPushButton(text)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys belong to teleop, not to buttons
        button.setFixedHeight(BUTTON_HEIGHT)
        if isinstance(button, GuardedButton):
            guarded_button = button

            def run() -> None:
                if guarded_button.accepts_click():
                    handler()
                else:
                    self.show_message(f"'{guarded_button.text()}' ignored: clicked as it became available")

            button.clicked.connect(lambda _checked=False: run())
        else:
            button.clicked.connect(lambda _checked=False: handler())  # drop 'checked', never an argument
        return button

    def _build_layout(self) -> QWidget:
        cameras = QWidget()
        cameras.setLayout(self.camera_grid)
        self._place_camera(self.camera_caption, self.camera)
        self.camera_stack = QStackedLayout()
        self.camera_stack.addWidget(cameras)
        self.camera_stack.addWidget(self.problem_panel)

        robot = QGroupBox("Robot, last 10 s")
        robot_box = QHBoxLayout(robot)
        robot_box.setContentsMargins(6, 4, 6, 4)
        plots = QVBoxLayout()
        plots.setSpacing(2)
        plots.addWidget(self.state_plot, 1)
        plots.addWidget(self.value_strip)
        robot_box.addLayout(plots, 1)
        gripper = QFormLayout()
        gripper.addRow("gripper", self.gripper_value)
        gripper.addRow("value", self.value_value)
        gripper.addRow("alert", self.alert_button)
        robot_box.addLayout(gripper)
        robot.setFixedHeight(206)

        live = QVBoxLayout()
        live.addLayout(self.camera_stack, 1)
        live.addWidget(robot)

        attempt = QGroupBox("Attempt")
        form = QFormLayout(attempt)
        form.setVerticalSpacing(2)
        form.addRow("id", self.episode_value)
        form.addRow("step", self.step_value)
        form.addRow("time", self.time_value)
        form.addRow("left", self.left_value)
        form.addRow("held", self.held_value)
        form.addRow("attempts done", self.done_value)
        form.addRow("station success", self.success_value)

        timing = QGroupBox("Control loop")
        timing_box = QVBoxLayout(timing)
        timing_box.addWidget(self.timing_value)
        self.readouts = (attempt, timing, self.health_panel)
        """Greyed out while the engine is not answering: their figures are old."""

        controls = QGroupBox("Controls")
        grid = QGridLayout(controls)
        pairs = (
            (self.start_button, self.takeover_button),
            (self.hold_button, self.handback_button),
            (self.resume_button, self.estop_button),
            (None, self.reset_button),
        )
        for row, (first, second) in enumerate(pairs):
            if first is not None:
                grid.addWidget(first, row, 0)
            grid.addWidget(second, row, 1)

        ending = QGroupBox("End the attempt")
        end_box = QVBoxLayout(ending)
        label_row = QHBoxLayout()
        for button in self.label_buttons:
            label_row.addWidget(button)
        end_box.addLayout(label_row)
        end_box.addWidget(self.note_field)
        rest = QHBoxLayout()
        for button in (self.stop_button, self.discard_button, self.rerecord_button):
            rest.addWidget(button)
        end_box.addLayout(rest)

        middle = self._column((attempt, controls, ending), 360)
        right = self._column((self.session_panel, self.health_panel, timing), 320)
        self.timing_value.setWordWrap(True)
        self._fixed_boxes = (attempt, controls, ending)
        self._timing_box = timing

        body = QHBoxLayout()
        body.addLayout(live, 1)
        body.addWidget(middle)
        body.addWidget(right)
        banner_line = QHBoxLayout()
        banner_line.addWidget(self.instruction_label, 3)
        banner_line.addWidget(self.value_alert_label, 2)
        banner_line.addWidget(self.refusal_label, 2)
        # Two lines each, always: a long instruction, alert or refusal wraps, never cut off, never
        # pushing the panels down.
        for label in (self.instruction_label, self.value_alert_label, self.refusal_label):
            label.setWordWrap(True)
        self.value_alert_label.setAlignment(Qt.AlignmentFlag.AlignCenter | Qt.AlignmentFlag.AlignTop)
        self.refusal_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        self.instruction_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        root = QVBoxLayout()
        root.setSpacing(4)
        root.addWidget(self.mode_label)
        root.addLayout(banner_line)
        root.addLayout(body, 1)
        central = QWidget()
        central.setLayout(root)
        return central

    def _fix_sizes(self) -> None:
        """Fix every panel's height for the fonts it is shown with: nothing moves, whatever the
        panels show (an attempt starting, a longer figure, a second line of timing)."""
        for box in self._fixed_boxes:
            box.setFixedHeight(box.sizeHint().height())
        spare = 2 * self.timing_value.fontMetrics().lineSpacing()
        self._timing_box.setFixedHeight(self._timing_box.sizeHint().height() + spare)
        self.health_panel.fix_height()
        self.session_panel.fix_height()
        for label in (self.instruction_label, self.value_alert_label, self.refusal_label):
            label.setFixedHeight(2 * label.fontMetrics().lineSpacing() + 2)
        widest = alert_button_text(-999.99)  # the threshold's text never moves the plots beside it
        self.alert_button.setFixedWidth(self.alert_button.fontMetrics().horizontalAdvance(widest) + 16)

    @staticmethod
    def _column(boxes: tuple[QWidget, ...], width: int) -> QWidget:
        column = QVBoxLayout()
        column.setContentsMargins(0, 0, 0, 0)
        for box in boxes:
            column.addWidget(box)
        column.addStretch(1)
        widget = QWidget()
        widget.setLayout(column)
        widget.setFixedWidth(width)
        return widget

    def _place_camera(self, caption: QLabel, view: CameraView) -> QWidget:
        holder = QWidget()
        box = QVBoxLayout(holder)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        box.addWidget(caption)
        box.addWidget(view, 1)
        self._camera_holders.append(holder)
        # Two columns up to four cameras, then three: every camera stays in view at 1366×768.
        columns = 2 if len(self._camera_holders) <= 4 else 3
        for index, placed in enumerate(self._camera_holders):
            self.camera_grid.removeWidget(placed)
            row, column = divmod(index, columns)
            self.camera_grid.addWidget(placed, row, column)
        return holder

    def _apply_style(self) -> None:
        base = QFont(self.font())
        base.setPointSize(10)
        self.setFont(base)
        # Fonts are set as QFonts; a style sheet with font properties would reset the size.
        value_font = QFont(base)
        value_font.setPointSize(12)
        value_font.setBold(True)
        for value in (
            self.episode_value,
            self.step_value,
            self.time_value,
            self.left_value,
            self.held_value,
            self.done_value,
            self.success_value,
            self.gripper_value,
            self.value_value,
        ):
            value.setFont(value_font)
        bold = QFont(base)
        bold.setBold(True)
        for widget in (
            self.connection_label,
            self.hold_button,
            self.refusal_label,
            self.instruction_label,
            self.value_alert_label,
        ):
            widget.setFont(bold)
        # The gripper's word never resizes the plot beside it.
        for label in (self.gripper_value, self.value_value):
            label.setFixedWidth(label.fontMetrics().horizontalAdvance("CLOSED") + 8)
        self.setStyleSheet(
            "QLabel#cameraCaption { color: #616161; }"
            "QLabel#refusalLabel { color: #c62828; }"
            "QLabel#valueAlertLabel { color: #d50000; }"
            "QPushButton#successButton:enabled { background: #c8e6c9; }"
            "QPushButton#nearSuccessButton:enabled { background: #fff9c4; }"
            "QPushButton#failureButton:enabled { background: #ffcdd2; }"
            "QPushButton#holdButton:enabled { background: #ffb300; color: black; }"
            "QPushButton#estopButton:enabled { background: #d50000; color: white; font-weight: bold; }"
            'QPushButton#discardButton[armed="true"] { background: #ffb300; font-weight: bold; }'
        )

    def _install_shortcuts(self) -> None:
        targets: dict[str, Callable[[], None]] = {
            "start": self.start_button.animateClick,
            "stop": self.stop_button.animateClick,
            "success": self.success_button.animateClick,
            "near_success": self.near_success_button.animateClick,
            "failure": self.failure_button.animateClick,
            "estop": lambda: self._command(CommandName.ESTOP),  # at once, whatever has focus
            "settings": self.settings_requested.emit,
            "value_alert": self.ask_value_alert,
            "help": self.help_overlay.toggle,
        }
        self.shortcuts: dict[str, QShortcut] = {}
        for entry in SHORTCUTS:
            shortcut = QShortcut(QKeySequence(entry.key), self)
            shortcut.setContext(
                Qt.ShortcutContext.ApplicationShortcut  # from the console's own dialogs too
                if entry.action == "estop"
                else Qt.ShortcutContext.WindowShortcut
            )
            shortcut.activated.connect(targets[entry.action])
            self.shortcuts[entry.action] = shortcut

    def resizeEvent(self, event: QResizeEvent | None) -> None:
        super().resizeEvent(event)
        if self.help_overlay.isVisible():
            self.help_overlay.show_overlay()

    # ---------------------------------------------------------------- commands
    def _command(self, name: CommandName, outcome: Outcome = "", note: str = "") -> None:
        self.link.send(Command(name, outcome=outcome, note=note))

    def set_value_alert(self, threshold: float | None) -> None:
        """Tell the engine to alert below ``threshold`` from now on (None: no alert)."""
        self.link.send(Command(CommandName.VALUE_ALERT, value_alert=threshold))

    def ask_value_alert(self) -> None:
        """Open the dialog that asks for the value alert's threshold (once: a second request
        brings the open one forward)."""
        if self._closed:
            return
        if self.value_alert_dialog is not None and self.value_alert_dialog.isVisible():
            self.value_alert_dialog.raise_()
            self.value_alert_dialog.activateWindow()
            return
        dialog = self.value_alert_dialog
        if dialog is None:
            dialog = ValueAlertDialog(self)
            dialog.accepted.connect(lambda: self.set_value_alert(dialog.threshold))
            # Not modal: while it is open the window's buttons (take over, hold, E-STOP) still
            # work, and F12 e-stops from the dialog too (an application-wide shortcut).
            dialog.setModal(False)
            self.value_alert_dialog = dialog
        status = self.status
        current = status.value_alert if status is not None else None
        latest = status.value if status is not None and status.episode_active else None
        dialog.prepare(current, latest)
        dialog.show()

    def _start(self) -> None:
        operator = self.session_panel.operator.text().strip()
        if not operator and self.status is not None and self.status.episodes_done == 0:
            self.show_message("tip: type your name under Session: it is stored with your attempts")
        task = self.session_panel.task.text().strip()
        known = self.status.session if self.status is not None else None
        said = (known.operator, known.task) if known is not None else ("", "")
        change = tuple(new if new != old else "" for new, old in zip((operator, task), said, strict=True))
        if any(change):  # who works and on what: stored with this attempt and the next ones
            self.link.send(Command(CommandName.SESSION, operator=change[0], task=change[1]))
        self._command(CommandName.START_EPISODE)

    def _end(self, outcome: Outcome) -> None:
        """End the running attempt with the operator's verdict and note ('' leaves it to the station)."""
        note = self.note_field.text().strip()
        self._command(CommandName.STOP_EPISODE, outcome, note)
        self.note_field.clear()
        self.note_field.clearFocus()

    def _discard(self) -> None:
        """First click arms the button for DISCARD_CONFIRM_MS; a second click discards the
        running attempt (nothing of it is kept) so that it can be recorded again."""
        if self._discard_timer.isActive():
            self._disarm_discard()
            self._command(CommandName.DISCARD_EPISODE)
            self.note_field.clear()
            return
        self._discard_timer.start()
        self.discard_button.setText(DISCARD_CONFIRM_TEXT)
        self._set_armed(True)
        self.show_message("click Discard again within 3 s to throw this attempt away")

    def _rerecord(self) -> None:
        """Throw the running attempt away and record it again at once, same scene (RERECORD)."""
        self._command(CommandName.RERECORD)
        self.note_field.clear()

    def _remedy(self, remedy: str) -> None:
        self.link.send(Command(REMEDY_COMMANDS[remedy]))
        self.show_message("retrying with the keyboard …" if remedy == "keyboard" else "retrying …")

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
        if not self.link.running:
            return
        if not (self.status is not None and self.status.episode_active):
            # Between attempts a key is refused here, never kept for the next attempt; only the
            # release of keys the engine was told about is still sent.
            if keys:
                self.show_refusal(f"no attempt is running: key {keys[-1]} not sent")
                return
            if not self._keys_sent:
                return
        self._keys_sent = keys
        self.link.send(Command(CommandName.KEYS, keys=keys), timeout_ms=KEYS_TIMEOUT_MS)

    def _on_refused(self, command: Command, reason: str) -> None:
        words = COMMAND_WORDS.get(command.name.value, command.name.value.replace("_", " "))
        self.show_refusal(f"{reason} ({words})")

    def show_refusal(self, text: str) -> None:
        """Say, in red under the banner for a few seconds, that a request was not carried out."""
        if self._closed:  # e.g. the engine refused the closing 'quit': no timer on a closed window
            return
        self.refusal_label.setText(f"refused: {text}")
        self._refusal_timer.start()

    # ------------------------------------------------------------------ status
    def show_status(self, status: Status) -> None:
        previous = self.status
        self.status = status
        self.cameras.expect(status.cameras)
        failed = status.readiness == "failed"
        if failed:
            self._show_mode(START_FAILED_TEXT, MODE_COLORS["ESTOP"])
            self.problem_panel.show_problem(status.problem)
            self.camera_stack.setCurrentWidget(self.problem_panel)
        else:
            self._show_mode(status.mode)
            self.camera_stack.setCurrentIndex(0)
        self._show_connection(failed)
        if status.episode_active:
            self.episode_value.setText(status.episode_id)
        else:
            self.episode_value.setText(f"last: {status.episode_id}" if status.episode_id else "—")
        self.step_value.setText(str(status.step))
        elapsed, left, held = clock_texts(status.clock)
        self.time_value.setText(elapsed)
        self.left_value.setText(left)
        self.held_value.setText(held)
        self.done_value.setText(str(status.episodes_done))
        self.success_value.setText("YES" if status.success else "no")
        self.success_value.setStyleSheet("color: #2e7d32;" if status.success else "")
        self.gripper_value.setText(
            "—" if status.gripper_closed is None else "CLOSED" if status.gripper_closed else "open"
        )
        self.instruction_label.setText(f"Task: {status.instruction}" if status.instruction else "")
        self.timing_value.setText(format_timing(status.timing))
        if previous is not None and previous.episode_active and not status.episode_active:
            self.state_plot.clear()
            self.value_strip.clear()
            self.note_field.clear()  # a note belongs to the attempt it was typed for
        self.state_plot.add(status.t, status.ee)
        self.value_strip.set_alert(status.value_alert)
        self.alert_button.setText(alert_button_text(status.value_alert))
        if status.episode_active:
            self.value_strip.add(status.t, status.value)
        value = status.value if status.episode_active else None
        self.value_value.setText("—" if value is None else f"{value:.2f}".replace("-", "\N{MINUS SIGN}"))
        self.value_alarm.show(None if failed else status)
        self.health_panel.show_items(status.health)
        self.session_panel.show_figures(status.session)
        if status.camera and not self.cameras.views:
            self.camera_caption.name = status.camera
            self.camera_caption.setText(f"camera: {status.camera}")
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
        """A camera frame from the engine's frame socket, in that camera's view (once the engine
        has named the station's cameras, so the views keep the configured order)."""
        status = self.status
        if status is None or (not status.cameras and status.readiness != "ready"):
            return
        try:
            view = self.cameras.show_frame(frame.camera, frame.image, frame.seq)
        except ValueError as exc:
            self.show_message(f"camera {frame.camera}: {exc}")
            return
        if view is self.camera:
            self._frame_at = time.monotonic()

    def _place_station_camera(self, name: str, view: CameraView) -> None:
        """Put a station camera's view on screen under its name (the first one is the main view)."""
        if view is self.camera:
            self.camera_caption.name = name
            self.camera_caption.setText(f"camera: {name}")
            return
        view.setMinimumSize(PREVIEW_SIZE[0], PREVIEW_SIZE[1])
        caption = CameraCaption(name)
        self._place_camera(caption, view).show()

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
        view.setFont(self.camera.font())
        caption = self.preview_captions[name] = CameraCaption(name)
        holder = self._place_camera(caption, view)
        holder.show()  # made after the window was shown
        self.previews[name] = view
        return view

    def show_message(self, text: str) -> None:
        self.message_label.setText(text)
        self.message_label.setToolTip(text)  # all of it, should the status bar be too narrow

    def _show_mode(self, text: str, color: QColor | None = None) -> None:
        fill = color if color is not None else mode_color(text)
        ink = "black" if text in DARK_TEXT_MODES else "white"
        self.mode_label.setText(text)
        self.mode_label.setStyleSheet(
            f"QLabel#modeLabel {{ background: {fill.name()}; color: {ink}; border-radius: 6px; }}"
        )

    def _show_connection(self, failed: bool) -> None:
        if not self.link.connected:
            return
        if failed:
            self.connection_label.setText("engine: connected — station NOT started")
            self.connection_label.setStyleSheet("color: #c62828;")
        else:
            self.connection_label.setText("engine: connected")
            self.connection_label.setStyleSheet("color: #2e7d32;")

    def _update_buttons(self) -> None:
        status = self.status if self.link.connected else None
        active = status is not None and status.episode_active
        ready = status is not None and status.readiness == "ready"
        mode = status.mode if status is not None else ""
        self.start_button.setEnabled(ready and not active)
        for button in (*self.label_buttons, self.stop_button, self.discard_button, self.rerecord_button):
            button.setEnabled(active)
        self.note_field.setEnabled(active)
        if not active and self._discard_timer.isActive():
            self._disarm_discard()
        self.takeover_button.setEnabled(active and mode in ("AUTONOMOUS", "RAMP", "HOLD"))
        self.handback_button.setEnabled(active and mode == "HUMAN")
        self.resume_button.setEnabled(active and mode == "HOLD")
        # Hold and e-stop stay available whenever they might help (also with no engine to tell us
        # better): never grey out a stop button. Between attempts the robot is not driven and the
        # engine refuses a hold, so it is not offered then; e-stop is, as it latches.
        self.hold_button.setEnabled((status is None or active) and mode not in ("HOLD", "ESTOP"))
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
        self.value_alarm.show(None)  # the estimate is old: no alert on it
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
            if self._unattended:  # nobody to ask: an attached console lets go, its engine runs on
                choice: CloseChoice = "detach" if self.close_choice is not None else "quit"
            else:
                choice = self.close_choice() if self.close_choice is not None else "quit"
            before: Command | None = None
            if choice == "quit" and self._attempt_running():
                answer = (
                    "interrupted"
                    if self._unattended
                    else ask_attempt_end(self, self.close_answer_timeout_s, self._attempt_running)
                )
                if answer == "cancel":
                    choice = "cancel"
                else:
                    before = attempt_end_command(answer)
            if choice == "cancel":
                if event is not None:
                    event.ignore()
                return
            self._closed = True
            self._refusal_timer.stop()
            self.value_alarm.show(None)  # its flashing timer stops
            if self.value_alert_dialog is not None:
                self.value_alert_dialog.reject()
            self.key_filter.release_all()
            app = QApplication.instance()
            if app is not None:
                app.removeEventFilter(self.key_filter)
            self._frame_timer.stop()
            if self.link.running:
                if before is not None:
                    self.link.send(before, timeout_ms=QUIT_TIMEOUT_MS)
                    self._wait_attempt_end()
                last = CommandName.DETACH if choice == "detach" else CommandName.QUIT
                self.link.send(Command(last), timeout_ms=QUIT_TIMEOUT_MS)
            self.link.stop()
        super().closeEvent(event)

    def close_unattended(self) -> None:
        """Close without asking anyone (Ctrl+C in the terminal): an attempt in progress is kept
        as interrupted."""
        self._unattended = True
        self.close()

    def _wait_attempt_end(self) -> None:
        """Let the engine carry the choice out (the attempt ends) before QUIT, which would end
        it without a verdict; at most ``end_wait_s``."""
        deadline = time.monotonic() + self.end_wait_s
        while self._attempt_running() and time.monotonic() < deadline:
            QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
            time.sleep(0.005)

    def _attempt_running(self) -> bool:
        return (
            self.link.running
            and self.link.connected
            and self.status is not None
            and self.status.episode_active
        )
