"""The GUI's connection to the engine process: status in on a worker thread, commands out.

:class:`EngineLink` subscribes to the engine's status endpoint on a worker ``QThread`` and hands
each decoded :class:`Status` to the GUI thread through a queued signal. Only the latest status
matters (the view must never lag behind the robot), so the subscriber keeps one message
(``CONFLATE``) and drains whatever else is queued. Commands go out from the GUI thread over a
REQ socket with send and receive timeouts; a REQ socket that timed out is stuck in its
lockstep, so it is closed (``LINGER`` 0) and a fresh one is made for the next command.

Nothing touches the network before :meth:`EngineLink.start`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import zmq
from PyQt6.QtCore import QObject, Qt, QThread, QTimer, pyqtSignal

from takeover.app.engine.protocol import Command, Status
from takeover.app.net import curve, wire

POLL_MS = 50
"""How long the subscriber waits for a message before checking whether it should stop."""


class _StatusThread(QThread):
    """Receives status messages; emits each newest one (in this worker thread)."""

    received = pyqtSignal(object)
    failed = pyqtSignal(str)

    def __init__(self, context: zmq.Context[Any], endpoint: str, keys: curve.ClientKeys | None) -> None:
        super().__init__()
        self._context = context
        self._endpoint = endpoint
        self._keys = keys
        self._stopping = threading.Event()

    def request_stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        sub = self._context.socket(zmq.SUB)
        try:
            sub.setsockopt(zmq.LINGER, 0)
            sub.setsockopt(zmq.CONFLATE, 1)  # keep only the newest status; must precede connect
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            if self._keys is not None:
                curve.make_client(sub, self._keys)
            sub.connect(self._endpoint)
            poller = zmq.Poller()
            poller.register(sub, zmq.POLLIN)
            while not self._stopping.is_set():
                if not poller.poll(POLL_MS):
                    continue
                payload = self._drain(sub)
                if payload is None:
                    continue
                try:
                    status = Status.decode(payload)
                except wire.WireError as exc:
                    self.failed.emit(f"bad status from engine: {exc}")
                    continue
                self.received.emit(status)
        except zmq.ZMQError as exc:
            self.failed.emit(f"status subscription failed: {exc}")
        finally:
            sub.close(linger=0)

    @staticmethod
    def _drain(sub: zmq.Socket[bytes]) -> bytes | None:
        """Return the newest queued message, dropping older ones."""
        latest: bytes | None = None
        while True:
            try:
                latest = sub.recv(zmq.NOBLOCK)
            except zmq.Again:
                return latest


class EngineLink(QObject):
    """Status subscription and command channel to the engine, for use from the GUI thread.

    Signals (all delivered in the GUI thread):
    ``status_received(Status)``, ``error(str)``, ``connection_lost()`` when no status arrived for
    more than ``stale_after_s`` and ``connection_ok()`` when statuses flow again.
    """

    status_received = pyqtSignal(object)
    error = pyqtSignal(str)
    connection_lost = pyqtSignal()
    connection_ok = pyqtSignal()

    def __init__(
        self,
        status_endpoint: str,
        command_endpoint: str,
        *,
        command_timeout_ms: int = 500,
        stale_after_s: float = 1.0,
        keys: curve.ClientKeys | None = None,
        parent: QObject | None = None,
    ) -> None:
        """``keys``: this console's CURVE keys and the engine's public key, for an engine that
        requires them (one bound to a non-loopback address)."""
        super().__init__(parent)
        self.keys = keys
        self.status_endpoint = status_endpoint
        self.command_endpoint = command_endpoint
        self.command_timeout_ms = command_timeout_ms
        self.stale_after_s = stale_after_s
        self._context: zmq.Context[Any] | None = None
        self._thread: _StatusThread | None = None
        self._req: zmq.Socket[bytes] | None = None
        self._last_status_at: float | None = None
        self._started_at = 0.0
        self._connected = False
        self._lost_reported = False
        self._watchdog = QTimer(self)
        self._watchdog.setInterval(100)
        self._watchdog.timeout.connect(self._check_staleness)

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Open the sockets and start receiving status. Calling it twice does nothing."""
        if self._context is not None:
            return
        self._context = zmq.Context()
        self._started_at = time.monotonic()
        self._last_status_at = None
        self._connected = False
        self._lost_reported = False
        thread = _StatusThread(self._context, self.status_endpoint, self.keys)
        # Explicitly queued: the slots must run in the GUI thread (the stubs lack the overload).
        thread.received.connect(self._on_status, Qt.ConnectionType.QueuedConnection)  # type: ignore[call-arg]
        thread.failed.connect(self.error, Qt.ConnectionType.QueuedConnection)  # type: ignore[call-arg]
        self._thread = thread
        thread.start()
        self._watchdog.start()

    def stop(self, timeout_ms: int = 2000) -> None:
        """Stop the subscriber thread and close every socket. Safe to call more than once."""
        self._watchdog.stop()
        stuck = False
        if self._thread is not None:
            self._thread.request_stop()
            if not self._thread.wait(timeout_ms):
                stuck = True
                self.error.emit("status thread did not stop in time")
        self._close_req()
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
        """The worker thread (exposed so callers and tests can check it has finished)."""
        return self._thread

    # ------------------------------------------------------------------ commands
    def send(self, command: Command, timeout_ms: int | None = None) -> dict[str, Any] | None:
        """Send a command and wait for the reply; on no answer, emit ``error`` and return None.

        A reply with ``ok`` false is returned as is, and its reason is emitted on ``error``.
        """
        if self._context is None:
            self.error.emit(f"not connected to the engine; '{command.name.value}' not sent")
            return None
        timeout = self.command_timeout_ms if timeout_ms is None else timeout_ms
        req = self._req_socket()
        req.setsockopt(zmq.SNDTIMEO, timeout)
        req.setsockopt(zmq.RCVTIMEO, timeout)
        try:
            req.send(command.encode())
            payload = req.recv()
        except zmq.Again:
            self._close_req()  # a REQ socket that missed its reply cannot send again
            self.error.emit(f"engine did not answer '{command.name.value}' within {timeout} ms")
            return None
        except zmq.ZMQError as exc:
            self._close_req()
            self.error.emit(f"sending '{command.name.value}' failed: {exc}")
            return None
        try:
            reply = wire.decode(payload)
        except wire.WireError as exc:
            self.error.emit(f"bad reply to '{command.name.value}': {exc}")
            return None
        if reply.get("ok") is not True:
            self.error.emit(f"engine refused '{command.name.value}': {reply.get('error', 'no reason given')}")
        return reply

    def _req_socket(self) -> zmq.Socket[bytes]:
        if self._req is None:
            assert self._context is not None
            req = self._context.socket(zmq.REQ)
            req.setsockopt(zmq.LINGER, 0)
            if self.keys is not None:
                curve.make_client(req, self.keys)
            req.connect(self.command_endpoint)
            self._req = req
        return self._req

    def _close_req(self) -> None:
        if self._req is not None:
            self._req.close(linger=0)
            self._req = None

    # ---------------------------------------------------------------- status in
    def _on_status(self, status: Status) -> None:
        if self._context is None:  # arrived after stop()
            return
        self._last_status_at = time.monotonic()
        if not self._connected:
            self._connected = True
            self._lost_reported = False
            self.connection_ok.emit()
        self.status_received.emit(status)

    def seconds_since_status(self) -> float | None:
        """Age of the last status, or None if none has arrived since :meth:`start`."""
        if self._last_status_at is None:
            return None
        return time.monotonic() - self._last_status_at

    def _check_staleness(self) -> None:
        since = self._last_status_at if self._last_status_at is not None else self._started_at
        if time.monotonic() - since <= self.stale_after_s:
            return
        self._connected = False
        if not self._lost_reported:
            self._lost_reported = True
            self.connection_lost.emit()
