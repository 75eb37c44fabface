"""The engine's camera frames, received on a worker thread.

The engine publishes each camera's frames on a socket of their own at the camera rate
(:class:`~takeover.app.engine.protocol.Frame`, named by ``Status.frames``), apart from the
15 Hz status. This thread keeps the newest frame of each camera (older queued ones are dropped:
the view never lags) and emits each, for a queued connection to the GUI thread.
"""

from __future__ import annotations

import zmq

from takeover.app.engine.protocol import Frame
from takeover.app.gui.console.subscriber_thread import SubscriberThread
from takeover.app.net import wire

RECEIVE_HWM = 8
"""Frames queued here at most (all cameras): beyond that the socket drops, never the engine waits."""


class FrameThread(SubscriberThread):
    """Receives frames; emits the newest of each camera (in this worker thread)."""

    WHAT = "camera frame"

    def configure(self, sub: zmq.Socket[bytes]) -> None:
        sub.setsockopt(zmq.RCVHWM, RECEIVE_HWM)

    def deliver(self, payloads: list[bytes]) -> None:
        newest: dict[str, Frame] = {}
        for payload in payloads:
            try:
                frame = Frame.decode(payload)
            except wire.WireError as exc:
                self.failed.emit(f"bad camera frame from engine: {exc}")
                continue
            newest[frame.camera] = frame
        for frame in newest.values():
            self.received.emit(frame)
