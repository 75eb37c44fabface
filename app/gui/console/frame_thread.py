"""The engine's camera frames, received on a worker thread.

The engine publishes each camera's frames on a socket of their own at the camera rate
(:class:`~takeover.app.engine.protocol.Frame`, named by ``Status.frames``), apart from the
15 Hz status. This thread keeps the newest frame of each camera (older queued ones are dropped:
the view never lags) and emits each, for a queued connection to the GUI thread.
"""

from __future__ import annotations

import threading
from typing import Any

import zmq
from PyQt6.QtCore import QThread, pyqtSignal

from takeover.app.engine.protocol import Frame
from takeover.app.net import curve, wire

POLL_MS = 50
RECEIVE_HWM = 8
"""Frames queued here at most (all cameras): beyond that the socket drops, never the engine waits."""


class FrameThread(QThread):
    """Receives frames; emits the newest of each camera (in this worker thread)."""

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
            sub.setsockopt(zmq.RCVHWM, RECEIVE_HWM)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            if self._keys is not None:
                curve.make_client(sub, self._keys)
            sub.connect(self._endpoint)
            poller = zmq.Poller()
            poller.register(sub, zmq.POLLIN)
            while not self._stopping.is_set():
                if not poller.poll(POLL_MS):
                    continue
                newest: dict[str, Frame] = {}
                for payload in self._drain(sub):
                    try:
                        frame = Frame.decode(payload)
                    except wire.WireError as exc:
                        self.failed.emit(f"bad camera frame from engine: {exc}")
                        continue
                    newest[frame.camera] = frame
                for frame in newest.values():
                    self.received.emit(frame)
        except zmq.ZMQError as exc:
            self.failed.emit(f"camera frame subscription failed: {exc}")
        finally:
            sub.close(linger=0)

    @staticmethod
    def _drain(sub: zmq.Socket[bytes]) -> list[bytes]:
        out: list[bytes] = []
        while True:
            try:
                out.append(sub.recv(zmq.NOBLOCK))
            except zmq.Again:
                return out
