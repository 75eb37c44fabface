"""Test peers: a bare REQ socket that sends bytes a real client would never produce, and raw TCP
peers that do not speak ZeroMQ at all."""

from __future__ import annotations

import random
import socket
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


UNDELIMITED_V1_MESSAGE = b"\x01\x00" + b"\x02\x01A" + b"\x02\x00B"
"""Raw bytes a ZeroMQ socket reads as a ZMTP/1.0 peer (an empty identity) sending the two-part
message ``[b"A", b"B"]`` with no envelope delimiter: from a peer that hangs up at once, this is
what made a REP socket send the next client's reply into the void."""


def send_garbage(endpoint: str, rng: random.Random | None = None, peers: int = 3) -> None:
    """Open ``peers`` raw TCP connections to a ``tcp://`` endpoint, send each bytes that do not
    follow the protocol, and hang up: the message above, or (with ``rng``) as often random bytes."""
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    for _ in range(peers):
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            if rng is not None and rng.random() < 0.5:
                conn.sendall(rng.randbytes(rng.randrange(1, 200)))
            else:
                conn.sendall(UNDELIMITED_V1_MESSAGE)
