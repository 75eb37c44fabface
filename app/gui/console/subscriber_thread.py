"""A ZeroMQ subscription of the engine's, received on a worker thread.

The console subscribes to two of the engine's streams: the status (:mod:`status_thread`) and the
camera frames (:mod:`frame_thread`). Both wait on a poller with a short timeout (so a stop is
seen within :data:`POLL_MS`), take everything queued at once (the view must never lag behind the
robot), decode it and emit it from this thread, for a queued connection to the GUI thread; they
differ only in their socket options and in what they keep of a batch.
"""

from __future__ import annotations

import threading
from typing import Any

import zmq
from PyQt6.QtCore import QThread, pyqtSignal

from takeover.app.net import curve

POLL_MS = 50
"""How long the subscriber waits for a message before checking whether it should stop."""


class SubscriberThread(QThread):
    """Subscribes to ``endpoint``; subclasses say how the socket is set up and what to emit."""

    received = pyqtSignal(object)
    failed = pyqtSignal(str)
    WHAT = "subscription"
    """What the stream is, for the message when the subscription fails."""

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

    def configure(self, sub: zmq.Socket[bytes]) -> None:
        """Set the socket's options (called before it connects)."""

    def deliver(self, payloads: list[bytes]) -> None:
        """Decode and emit what matters of the messages queued since the last poll (oldest first)."""
        raise NotImplementedError

    def run(self) -> None:
        sub = self._context.socket(zmq.SUB)
        try:
            sub.setsockopt(zmq.LINGER, 0)
            self.configure(sub)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            if self._keys is not None:
                curve.make_client(sub, self._keys)
            sub.connect(self._endpoint)
            poller = zmq.Poller()
            poller.register(sub, zmq.POLLIN)
            while not self._stopping.is_set():
                if poller.poll(POLL_MS):
                    self.deliver(_drain(sub))
        except zmq.ZMQError as exc:
            self.failed.emit(f"{self.WHAT} subscription failed: {exc}")
        finally:
            sub.close(linger=0)


def _drain(sub: zmq.Socket[bytes]) -> list[bytes]:
    """Every message queued now, oldest first."""
    out: list[bytes] = []
    while True:
        try:
            out.append(sub.recv(zmq.NOBLOCK))
        except zmq.Again:
            return out
