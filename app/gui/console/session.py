"""What a console adds around its window: its claim on the engine, who and what it shows, what
closing does, and the Settings dialog.

- **The claim.** The console attaches under a name (``user@host pid N``) and renews the claim
  every second (ATTACH, app/engine/viewers.py). If another console holds the engine, this one is
  read-only: it says so in the title and the status bar, and may still hold and e-stop.
- **Identity.** The window title and a permanent status-bar label show the station, the policy
  and the store the engine reports (:func:`window_title`, :func:`identity_text`).
- **Closing.** A console started with its engine (`takeover run`) stops it on close, as always.
  One attached to an engine it did not start asks: Detach (the default: the engine and its
  attempt keep running), Stop the engine, or Cancel.
- **Settings.** ``settings_requested`` (a button of the window, or Ctrl+, here) opens the dialog
  on what :class:`ConsoleOptions` gives; saving with "restart" restarts the engine off the GUI
  thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from PyQt6.QtCore import QObject, QTimer, pyqtSignal
from PyQt6.QtWidgets import QLabel, QMessageBox

from takeover.app.engine.protocol import AttachReply, Command, CommandName, Status
from takeover.app.gui.console.close_attempt import ANSWER_TIMEOUT_S, exec_with_deadline
from takeover.app.gui.console.engine_link import EngineLink
from takeover.app.gui.console.settings import SettingsDialog, SettingsTarget
from takeover.app.gui.console.shortcuts import shortcut_key
from takeover.app.gui.console.window import CloseChoice, MainWindow
from takeover.app.net.wire import WireError
from takeover.app.runtime.config import ConfigError, parse_config

RENEW_MS = 1000
"""How often the console renews its claim on the engine (the engine lets it lapse after 3 s)."""
ATTACH_TIMEOUT_MS = 500
SETTINGS_SHORTCUT = shortcut_key("settings")
"""The window installs it (shortcuts.py); the session opens the dialog it asks for."""


@dataclass(frozen=True)
class ConsoleOptions:
    owns_engine: bool = True
    """The console started its engine (`takeover run`): closing it stops the engine."""
    attach_url: str = ""
    """The engine's command endpoint, for the words a detaching operator reads."""
    settings: Callable[[], SettingsTarget] | None = None
    """What the Settings dialog edits (read when it opens); None: the engine's own settings,
    read-only, as it sent them when this console attached."""


def window_title(status: Status | None, base: str = "Takeover", read_only: bool = False) -> str:
    """``Takeover — pick-place-v3 · policy mlp-3f2a · store ~/data/store`` (what this console runs)."""
    title = base
    if status is not None and (status.station or status.policy_id or status.store):
        parts = [status.station or "station ?", f"policy {status.policy_id or 'none'}"]
        parts.append(f"store {status.store or '?'}")
        title = f"{base} — {' · '.join(parts)}"
    return f"{title} (read-only)" if read_only else title


def identity_text(status: Status | None) -> str:
    """The status bar's account of what the engine runs."""
    if status is None:
        return ""
    station, policy, store = status.station or "?", status.policy_id or "none", status.store or "?"
    return f"station: {station}   policy: {policy}   store: {store}"


class ConsoleSession(QObject):
    """Adds the claim, identity, close question and settings to a window (see the module)."""

    restarted = pyqtSignal(str)
    """The engine restart finished; the text says how (delivered in the GUI thread)."""

    def __init__(
        self, window: MainWindow, link: EngineLink, options: ConsoleOptions, base_title: str
    ) -> None:
        super().__init__(window)
        self.window = window
        self.link = link
        self.options = options
        self.base_title = base_title
        self.status: Status | None = None
        self.read_only = False
        self.holder = ""
        self.engine_config = ""
        """The engine's configuration as it sent it (TOML), for a console that did not start it."""
        self.restarting: threading.Thread | None = None
        self.restart_result = ""
        """What the last engine restart came to (also shown in the status bar)."""
        self.answer_timeout_s = ANSWER_TIMEOUT_S
        """How long the close question waits for an answer before it detaches."""
        self.identity = QLabel("")
        self.identity.setObjectName("identityLabel")
        window.statusBar().addPermanentWidget(self.identity)  # type: ignore[union-attr]
        window.settings_requested.connect(self.open_settings)
        if not options.owns_engine:
            window.close_choice = self.close_choice
        self._timer = QTimer(self)
        self._timer.setInterval(RENEW_MS)
        self._timer.timeout.connect(self.renew)
        self._timer.start()
        link.connection_ok.connect(self.renew)
        link.replied.connect(self._on_reply)
        link.status_received.connect(self._on_status)
        self.restarted.connect(self._on_restarted)

    # -- the claim ---------------------------------------------------------------------------
    def renew(self) -> None:
        if self.link.running and self.link.connected:
            self.link.send(Command(CommandName.ATTACH), timeout_ms=ATTACH_TIMEOUT_MS)

    def _on_reply(self, command: Command, reply: object) -> None:
        if command.name is not CommandName.ATTACH or not isinstance(reply, dict):
            return
        try:
            answer = AttachReply.from_body(reply)
        except WireError as exc:
            self.window.show_message(f"bad answer to 'attach': {exc}")
            return
        self.engine_config = answer.config
        was = self.read_only
        self.read_only, self.holder = not answer.granted, answer.holder
        if self.read_only and not was:
            self.window.show_message(
                f"read-only: another console is attached ({answer.holder}); this one may watch, "
                "hold and e-stop"
            )
        elif was and not self.read_only:
            self.window.show_message("attached: this console now drives the engine")
        self._show_identity()

    def _on_status(self, status: Status) -> None:
        self.status = status
        self._show_identity()

    def _show_identity(self) -> None:
        self.window.setWindowTitle(window_title(self.status, self.base_title, self.read_only))
        held = f"READ-ONLY ({self.holder} drives)   " if self.read_only else ""
        self.identity.setText(held + identity_text(self.status))
        self.identity.setStyleSheet("color: #c62828; font-weight: bold;" if self.read_only else "")

    # -- closing -----------------------------------------------------------------------------
    def close_choice(self) -> CloseChoice:
        """Asked by the window when it closes: detach (default), stop the engine, or stay."""
        if self.read_only:
            return "detach"  # nothing to let go of; never stops an engine another console holds
        again = f" (`takeover console --attach {self.options.attach_url}`)" if self.options.attach_url else ""
        box = QMessageBox(self.window)
        box.setWindowTitle("Close the console")
        box.setIcon(QMessageBox.Icon.Question)
        box.setText("This console did not start the engine. Leave it running?")
        detach = box.addButton("Detach", QMessageBox.ButtonRole.AcceptRole)
        stop = box.addButton("Stop the engine", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(detach)
        assert detach is not None

        def tell(left_s: int) -> None:
            box.setInformativeText(
                "Detach: the engine keeps running, and so does an attempt in progress; attach again "
                f"any time{again}.\nStop the engine: it ends (an attempt in progress: you are asked "
                f"what becomes of it).\nWithout an answer in {left_s} s the console detaches."
            )

        exec_with_deadline(box, detach, self.answer_timeout_s, tell)
        clicked = box.clickedButton()
        return "detach" if clicked is detach else "quit" if clicked is stop else "cancel"

    # -- settings ----------------------------------------------------------------------------
    def settings_target(self) -> SettingsTarget | None:
        if self.options.settings is not None:
            return self.options.settings()
        if not self.engine_config and self.status is None:
            return None
        try:
            config = parse_config(self.engine_config, "the engine's settings")
        except ConfigError as exc:
            self.window.show_message(str(exc))
            return None
        return SettingsTarget(
            config,
            None,
            note="This console did not start the engine: these are its settings, read-only. Change "
            "them where it runs (takeover engine --config FILE) and restart it.",
        )

    def open_settings(self) -> SettingsDialog | None:
        """Show the dialog (modal); save, and restart the engine if asked. Returns the dialog."""
        try:
            target = self.settings_target()
        except ConfigError as exc:  # the file on disk is broken: say so, do not lose it
            self.window.show_message(f"settings: {exc}")
            return None
        if target is None:
            self.window.show_message("settings: not attached to an engine yet")
            return None
        busy = ""
        if self.status is not None and self.status.episode_active:
            busy = "an attempt is running: end it before restarting the engine"
        elif self.restarting is not None:
            busy = "the engine is restarting"
        dialog = SettingsDialog(target, self.window, busy)
        if dialog.exec() and dialog.saved is not None and target.path is not None:
            if dialog.apply and target.restart is not None:
                self.restart_engine(target.restart)
            else:
                self.window.show_message(
                    f"settings saved to {target.path}; they take effect when the engine restarts"
                )
        return dialog

    def restart_engine(self, restart: Callable[[], str]) -> None:
        self.window.show_message("restarting the engine with the new settings …")

        def work() -> None:
            try:
                said = restart()
            except Exception as exc:  # shown to the operator; the console stays usable
                said = f"the engine did not restart: {exc}"
            self.restarted.emit(said)

        self.restarting = threading.Thread(target=work, name="engine-restart", daemon=True)
        self.restarting.start()

    def _on_restarted(self, text: str) -> None:
        self.restarting = None
        self.restart_result = text
        self.window.show_message(text)
