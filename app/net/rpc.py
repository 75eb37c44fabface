"""Request/reply plumbing shared by every ZeroMQ endpoint of Takeover (station, policy).

:class:`RequestChannel` is the client side: one REQ socket with send/receive timeouts and no
linger, replaced after a missed reply (a REQ socket that missed one is stuck), replies decoded
and checked (``ok``, expected ``type``). :func:`serve_requests` is the server side: a poll loop
that answers every request exactly once and stops promptly when asked.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Callable
from typing import Any

import zmq

from takeover.app.net import curve
from takeover.app.net.wire import MAX_MESSAGE_BYTES, WireError, decode, encode, error_reply

log = logging.getLogger(__name__)


class RequestChannel:
    """A REQ connection to one server. No I/O until :meth:`connect`.

    ``unavailable`` / ``rejected`` are the exception types raised when nobody answers in time /
    when the server answers with an error or nonsense; ``timeout_message`` and
    ``refused_message`` are format strings with ``{url}``, ``{type}``, ``{timeout}`` (and
    ``{error}``) telling the user what to do.
    """

    def __init__(
        self,
        url: str,
        timeout_s: float,
        keys: curve.ClientKeys | None,
        *,
        peer: str,
        unavailable: type[Exception],
        rejected: type[Exception],
        timeout_message: str,
        refused_message: str,
    ) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.url = url
        self.timeout_s = float(timeout_s)
        self.keys = keys
        self.peer = peer
        self._unavailable = unavailable
        self._rejected = rejected
        self._timeout_message = timeout_message
        self._refused_message = refused_message
        self._ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self._sock: zmq.Socket[bytes] | None = None

    @property
    def connected(self) -> bool:
        return self._ctx is not None

    def connect(self) -> None:
        if self._ctx is not None:
            return
        self._ctx = zmq.Context()
        try:
            self._sock = self._new_socket()
        except zmq.ZMQError as exc:
            self.close()
            raise self._unavailable(f"cannot connect to a {self.peer} at {self.url}: {exc}") from exc

    def close(self) -> None:
        sock, self._sock = self._sock, None
        ctx, self._ctx = self._ctx, None
        if sock is not None:
            sock.close(0)
        if ctx is not None:
            ctx.term()

    def set_timeout(self, timeout_s: float) -> None:
        """Change how long a request may take (a new socket is made if connected)."""
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.timeout_s = float(timeout_s)
        if self._sock is not None:
            self._reset_socket()

    def request(self, message: dict[str, Any], expect_type: str) -> dict[str, Any]:
        """Send one message, return the decoded reply of type ``expect_type``."""
        if self._sock is None:
            raise RuntimeError(f"{self.peer} at {self.url}: not connected (call connect() first)")
        fields = {"url": self.url, "type": message.get("type", ""), "timeout": self.timeout_s}
        try:
            self._sock.send(encode(message))
            payload = self._sock.recv()
        except zmq.Again:
            self._reset_socket()
            raise self._unavailable(self._timeout_message.format(**fields)) from None
        except zmq.ZMQError as exc:
            self._reset_socket()
            raise self._unavailable(f"{self.peer} at {self.url}: {exc}") from exc
        try:
            reply = decode(payload)
        except WireError as exc:
            raise self._rejected(f"{self.peer} at {self.url} sent an unreadable reply: {exc}") from exc
        if reply.get("ok") is not True:
            error = reply.get("error", "no reason given")
            raise self._rejected(self._refused_message.format(error=error, **fields))
        if reply["type"] != expect_type:
            raise self._rejected(
                f"{self.peer} at {self.url} answered {reply['type']!r}, expected {expect_type!r}"
            )
        return reply

    def _new_socket(self) -> zmq.Socket[bytes]:
        assert self._ctx is not None
        sock = self._ctx.socket(zmq.REQ)
        ms = max(1, int(self.timeout_s * 1000))
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, ms)
        sock.setsockopt(zmq.SNDTIMEO, ms)
        if self.keys is not None:
            curve.make_client(sock, self.keys)
        sock.connect(self.url)
        return sock

    def _reset_socket(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
        self._sock = self._new_socket()


def serve_requests(
    sock: zmq.Socket[bytes],
    handle: Callable[[list[bytes]], bytes],
    stop: threading.Event,
    poll_ms: int,
    on_failure: Callable[[], None] | None = None,
) -> None:
    """Answer requests on a REP socket until ``stop`` is set (checked every ``poll_ms``).

    ``handle`` turns one request's frames into the encoded reply; if it raises, the sender gets
    an error reply anyway (a REP socket must never be left without one) and ``on_failure`` runs.
    """
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    while not stop.is_set():
        try:
            ready = dict(poller.poll(poll_ms))
        except zmq.ZMQError as exc:
            if exc.errno == errno.EINTR:
                continue
            raise
        if sock not in ready:
            continue
        frames = sock.recv_multipart()
        try:
            reply = handle(frames)
        except Exception as exc:
            log.exception("request handler failed")
            if on_failure is not None:
                on_failure()
            reply = error_reply(f"internal server error: {type(exc).__name__}: {exc}")
        sock.send(reply)


class ReplySocket:
    """A bound REP socket with its own context and, for CURVE, its authenticator. Use :meth:`bind`."""

    def __init__(
        self,
        ctx: zmq.Context[zmq.Socket[bytes]],
        sock: zmq.Socket[bytes],
        auth: Any,
        endpoint: str,
    ) -> None:
        self.ctx, self.sock, self._auth, self.endpoint = ctx, sock, auth, endpoint

    @classmethod
    def bind(cls, endpoint: str, keys: curve.ServerKeys | None, what: str) -> ReplySocket:
        """Bind ``endpoint`` (``tcp://host:0`` picks a free port); raise OSError naming ``what``."""
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        auth = curve.start_authenticator(ctx, keys) if keys is not None else None
        sock = ctx.socket(zmq.REP)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        if keys is not None:
            curve.make_server(sock, keys)
        target = (
            endpoint[:-2] + ":*" if endpoint.startswith("tcp://") and endpoint.endswith(":0") else endpoint
        )
        try:
            sock.bind(target)
        except zmq.ZMQError as exc:
            cls(ctx, sock, auth, endpoint).close()
            raise OSError(f"cannot bind the {what} to {endpoint}: {exc}") from exc
        last = sock.getsockopt(zmq.LAST_ENDPOINT)
        return cls(ctx, sock, auth, last.decode() if isinstance(last, bytes) else str(last))

    def close(self) -> None:
        self.sock.close(0)
        if self._auth is not None:
            self._auth.stop()
        self.ctx.term()
