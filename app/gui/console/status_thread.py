"""The engine's status stream, received on a worker thread.

Only the latest status matters (the view must never lag behind the robot), so the subscriber
keeps one message (``CONFLATE``) and drops whatever older is queued; each newest status is
emitted from this thread, for a queued connection to the GUI thread.
"""

from __future__ import annotations

import zmq

from takeover.app.engine.protocol import Status
from takeover.app.gui.console.subscriber_thread import SubscriberThread
from takeover.app.net import wire


class StatusThread(SubscriberThread):
    """Receives status messages; emits each newest one (in this worker thread)."""

    WHAT = "status"

    def configure(self, sub: zmq.Socket[bytes]) -> None:
        sub.setsockopt(zmq.CONFLATE, 1)  # keep only the newest status; must precede connect

    def deliver(self, payloads: list[bytes]) -> None:
        if not payloads:
            return
        try:
            status = Status.decode(payloads[-1])
        except wire.WireError as exc:
            self.failed.emit(f"bad status from engine: {exc}")
            return
        self.received.emit(status)
