"""A bare REQ socket for tests and fuzzing: sends bytes a real client would never produce."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

import zmq

from takeover.app.net.wire import decode


class RawClient:
    """``with RawClient(endpoint) as raw: raw.ask(b"...")`` — one REQ socket, LINGER 0."""

    def __init__(self, endpoint: str, timeout_ms: int = 5000) -> None:
        self.endpoint = endpoint
        self.timeout_ms = timeout_ms
        self._ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self.sock: zmq.Socket[bytes] | None = None

    def connect(self) -> None:
        self._ctx = zmq.Context()
        self.reconnect()

    def reconnect(self) -> None:
        """A fresh socket (after a request that was dropped without a reply)."""
        assert self._ctx is not None
        if self.sock is not None:
            self.sock.close(0)
        sock = self._ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, self.timeout_ms)
        sock.setsockopt(zmq.SNDTIMEO, self.timeout_ms)
        sock.connect(self.endpoint)
        self.sock = sock

    def send(self, payload: bytes | list[bytes]) -> bytes:
        assert self.sock is not None
        if isinstance(payload, list):
            self.sock.send_multipart(payload)
        else:
            self.sock.send(payload)
        return self.sock.recv()

    def ask(self, payload: bytes | list[bytes]) -> dict[str, Any]:
        """Send raw bytes (or frames) and decode the reply."""
        return decode(self.send(payload))

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
