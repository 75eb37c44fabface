"""Commands to the engine, sent from a worker thread: the console never waits on the network.

The GUI thread only queues a command (:meth:`CommandThread.submit`). This thread sends the
commands one at a time, in order, over a REQ socket and waits for each reply until the command's
deadline (its timeout, counted from the moment it was queued), then reports the outcome through
signals that the link connects as queued (their slots run in the GUI thread).

A command whose deadline passed while it waited behind others (the engine is not answering) is
dropped unsent, so a click is never carried out seconds late from the console's queue. A command
that was sent but not answered may still be carried out if the engine wakes up; the failure
message says so. A REQ socket that missed its reply is stuck in its lockstep, so it is closed
(``LINGER`` 0) and a fresh one is made for the next command.
"""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass
from typing import Any

import zmq
from PyQt6.QtCore import QThread, pyqtSignal

from takeover.app.engine.protocol import Command
from takeover.app.net import curve, wire

NOT_ANSWERING = "engine not answering"
"""How every failure to get an answer in time begins (the operator's words for a stalled engine)."""


@dataclass(frozen=True)
class _Pending:
    command: Command
    timeout_ms: int
    deadline: float
    """``time.monotonic()`` by which the reply must be in."""


class CommandThread(QThread):
    """Sends queued commands; emits ``answered(Command, reply)`` or ``failed(Command, reason)``,
    and for a command the engine refused also ``refused(Command, the engine's reason)``."""

    answered = pyqtSignal(object, object)
    failed = pyqtSignal(object, str)
    refused = pyqtSignal(object, str)

    def __init__(
        self, context: zmq.Context[Any], endpoint: str, keys: curve.ClientKeys | None = None
    ) -> None:
        super().__init__()
        self._context = context
        self._endpoint = endpoint
        self._keys = keys
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()

    def submit(self, command: Command, timeout_ms: int) -> None:
        """Queue ``command``; it must be answered within ``timeout_ms`` from now. Never blocks."""
        self._queue.put(_Pending(command, timeout_ms, time.monotonic() + timeout_ms / 1000.0))

    def finish(self) -> None:
        """Send what is already queued (each within its deadline), then end the thread."""
        self._queue.put(None)

    def run(self) -> None:
        req: zmq.Socket[bytes] | None = None
        try:
            while (pending := self._queue.get()) is not None:
                name = pending.command.name.value
                left_ms = int((pending.deadline - time.monotonic()) * 1000)
                if left_ms <= 0:
                    self.failed.emit(pending.command, f"{NOT_ANSWERING}: '{name}' was not sent")
                    continue
                if req is None:
                    req = self._context.socket(zmq.REQ)
                    req.setsockopt(zmq.LINGER, 0)
                    if self._keys is not None:
                        curve.make_client(req, self._keys)
                    req.connect(self._endpoint)
                req.setsockopt(zmq.SNDTIMEO, left_ms)
                req.setsockopt(zmq.RCVTIMEO, left_ms)
                try:
                    req.send(pending.command.encode())
                    payload = req.recv()
                except zmq.ZMQError as exc:
                    req.close(linger=0)  # a REQ socket that missed its reply cannot send again
                    req = None
                    self.failed.emit(pending.command, self._unanswered(name, pending.timeout_ms, exc))
                    continue
                self._report(pending.command, payload)
        finally:
            if req is not None:
                req.close(linger=0)

    @staticmethod
    def _unanswered(name: str, timeout_ms: int, exc: zmq.ZMQError) -> str:
        if isinstance(exc, zmq.Again):
            return (
                f"{NOT_ANSWERING}: no reply to '{name}' within {timeout_ms} ms (it may still be carried out)"
            )
        return f"sending '{name}' failed: {exc}"

    def _report(self, command: Command, payload: bytes) -> None:
        name = command.name.value
        try:
            reply = wire.decode(payload)
        except wire.WireError as exc:
            self.failed.emit(command, f"bad reply to '{name}': {exc}")
            return
        if reply.get("ok") is not True:
            self.refused.emit(command, str(reply.get("error", "no reason given")))
            self.failed.emit(command, f"engine refused '{name}': {reply.get('error', 'no reason given')}")
            return
        self.answered.emit(command, reply)
