"""The engine's status stream, received on a worker thread.

Only the latest status matters (the view must never lag behind the robot), so the subscriber
keeps one message (``CONFLATE``) and drains whatever else is queued; each newest status is
emitted from this thread, for a queued connection to the GUI thread.
"""

from __future__ import annotations

import threading
from typing import Any

import zmq
from PyQt6.QtCore import QThread, pyqtSignal

from takeover.app.engine.protocol import Status
from takeover.app.net import curve, wire

POLL_MS = 50
"""How long the subscriber waits for a message before checking whether it should stop."""


class StatusThread(QThread):
    """Receives status messages; emits each newest one (in this worker thread)."""

    received = pyqtSignal(object)
    failed = pyqtSignal(str)

    def __init__(
        self, context: zmq.Context[Any], endpoint: str, keys: curve.ClientKeys | None = None
    ) -> None:
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
