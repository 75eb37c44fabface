"""The GUI's connection to the engine process. The GUI thread never waits on the network.

:class:`EngineLink` runs two worker ``QThread``\\ s: one subscribes to the engine's status stream
(:mod:`.status_thread`), one sends the operator's commands and waits for their replies
(:mod:`.command_thread`). Results reach the GUI thread only through queued signals. A watchdog
timer in the GUI thread declares the engine not answering when no status arrived for
``stale_after_s``; a command that gets no reply in time says so too.

Nothing touches the network before :meth:`EngineLink.start`.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import zmq
from PyQt6.QtCore import QObject, Qt, QThread, QTimer, pyqtSignal

from takeover.app.engine.attach import reachable
from takeover.app.engine.protocol import Command, Frame, Status
from takeover.app.gui.console.command_thread import CommandThread
from takeover.app.gui.console.frame_thread import FrameThread
from takeover.app.gui.console.status_thread import StatusThread
from takeover.app.net import curve

STALE_AFTER_S = 0.6
"""No status for this long (nine missed at 15 Hz) means the engine is not answering; with the
watchdog's 50 ms tick the console says so within 0.65 s."""
WATCHDOG_MS = 50

_QUEUED = Qt.ConnectionType.QueuedConnection


def _connect_queued(signal: Any, slot: Any) -> None:
    """``signal.connect(slot, QueuedConnection)``: PyQt6 takes the connection type, its type stubs
    do not, so the call goes through ``Any``."""
    signal.connect(slot, _QUEUED)


class EngineLink(QObject):
    """Status subscription and command channel to the engine, for use from the GUI thread.

    Signals (all delivered in the GUI thread): ``status_received(Status)``; ``replied(Command,
    dict)`` when the engine accepted a command; ``error(str)`` for anything the operator should
    read (a refused or unanswered command, a bad status); ``refused(Command, reason)`` when the
    engine said no to a command (also reported through ``error``); ``connection_lost()`` when no status
    arrived for more than ``stale_after_s`` and ``connection_ok()`` when statuses flow again.
    """

    status_received = pyqtSignal(object)
    replied = pyqtSignal(object, object)
    error = pyqtSignal(str)
    refused = pyqtSignal(object, str)
    connection_lost = pyqtSignal()
    connection_ok = pyqtSignal()
    frame_received = pyqtSignal(object)
    """A camera :class:`Frame` (the newest of its camera), from the engine's frame socket."""

    def __init__(
        self,
        status_endpoint: str,
        command_endpoint: str,
        *,
        command_timeout_ms: int = 500,
        stale_after_s: float = STALE_AFTER_S,
        keys: curve.ClientKeys | None = None,
        viewer: str = "",
        parent: QObject | None = None,
    ) -> None:
        """``keys``: this console's CURVE keys and the engine's public key, for an engine that
        requires them (one bound to a non-loopback address). ``viewer``: the name this console
        attaches under; every command carries it (app/engine/viewers.py)."""
        super().__init__(parent)
        self.keys = keys
        self.viewer = viewer
        self.status_endpoint = status_endpoint
        self.command_endpoint = command_endpoint
        self.command_timeout_ms = command_timeout_ms
        self.stale_after_s = stale_after_s
        self._context: zmq.Context[Any] | None = None
        self._status: StatusThread | None = None
        self._commands: CommandThread | None = None
        self._frames: FrameThread | None = None
        self._last_status_at: float | None = None
        self._started_at = 0.0
        self._connected = False
        self._lost_reported = False
        self._watchdog = QTimer(self)
        self._watchdog.setInterval(WATCHDOG_MS)
        self._watchdog.timeout.connect(self._check_staleness)

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Open the sockets and start both worker threads. Calling it twice does nothing."""
        if self._context is not None:
            return
        self._context = zmq.Context()
        self._started_at = time.monotonic()
        self._last_status_at = None
        self._connected = False
        self._lost_reported = False
        status = StatusThread(self._context, self.status_endpoint, self.keys)
        # Explicitly queued: the slots must run in the GUI thread.
        commands = CommandThread(self._context, self.command_endpoint, self.keys)
        for signal, slot in (
            (status.received, self._on_status),
            (status.failed, self.error),
            (commands.answered, self.replied),
            (commands.failed, self._on_command_failed),
            (commands.refused, self.refused),
        ):
            _connect_queued(signal, slot)
        self._status, self._commands = status, commands
        status.start()
        commands.start()
        self._watchdog.start()

    def stop(self, timeout_ms: int = 2000) -> None:
        """Send the commands already queued (each within its timeout), stop both threads and close
        every socket. Safe to call more than once."""
        self._watchdog.stop()
        stuck = False
        if self._status is not None:
            self._status.request_stop()
        if self._frames is not None:
            self._frames.request_stop()
        if self._commands is not None:
            self._commands.finish()
        for thread in (self._status, self._frames, self._commands):
            if thread is not None and not thread.wait(timeout_ms):
                stuck = True
                self.error.emit("a link thread did not stop in time")
        if self._context is not None:
            if stuck:
                self._context.destroy(linger=0)  # term() would wait for the stuck thread's socket
            else:
                self._context.term()
            self._context = None

    @property
    def running(self) -> bool:
        return self._context is not None

    @property
    def connected(self) -> bool:
        """True while statuses arrive (the last one is younger than ``stale_after_s``)."""
        return self._connected

    @property
    def status_thread(self) -> QThread | None:
        """The status worker (exposed so callers and tests can check it has finished)."""
        return self._status

    @property
    def command_thread(self) -> QThread | None:
        """The command worker (exposed so callers and tests can check it has finished)."""
        return self._commands

    # ------------------------------------------------------------------ commands
    def send(self, command: Command, timeout_ms: int | None = None) -> None:
        """Queue a command for the engine and return at once.

        The outcome arrives later as ``replied`` (accepted) or ``error`` (refused, not answered
        within the timeout, or not sent because the ones before it were not answered in time).
        """
        if self._commands is None or self._context is None:
            self.error.emit(f"not connected to the engine; '{command.name.value}' not sent")
            return
        if self.viewer and not command.viewer:
            command = dataclasses.replace(command, viewer=self.viewer)
        self._commands.submit(command, self.command_timeout_ms if timeout_ms is None else timeout_ms)

    def _on_command_failed(self, command: Command, reason: str) -> None:
        self.error.emit(reason)

    # ---------------------------------------------------------------- status in
    def _on_status(self, status: Status) -> None:
        if self._context is None:  # arrived after stop()
            return
        self._last_status_at = time.monotonic()
        if status.frames and self._frames is None:
            self._start_frames(status.frames)
        if not self._connected:
            self._connected = True
            self._lost_reported = False
            self.connection_ok.emit()
        self.status_received.emit(status)

    def _start_frames(self, endpoint: str) -> None:
        """Subscribe to the engine's camera frames (named by its status), reached as the status is."""
        assert self._context is not None
        try:
            endpoint = reachable(endpoint, self.status_endpoint)
        except ValueError as exc:
            self.error.emit(f"the engine's camera frames cannot be reached: {exc}")
            return
        frames = FrameThread(self._context, endpoint, self.keys)
        _connect_queued(frames.received, self._on_frame)
        _connect_queued(frames.failed, self.error)
        self._frames = frames
        frames.start()

    def _on_frame(self, frame: Frame) -> None:
        if self._context is not None:
            self.frame_received.emit(frame)

    def _check_staleness(self) -> None:
        since = self._last_status_at if self._last_status_at is not None else self._started_at
        if time.monotonic() - since <= self.stale_after_s:
            return
        self._connected = False
        if not self._lost_reported:
            self._lost_reported = True
            self.connection_lost.emit()
