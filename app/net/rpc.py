"""Request/reply plumbing shared by every ZeroMQ endpoint of Takeover (station, policy, engine).

Servers bind a ROUTER socket and handle envelopes themselves (:func:`serve_requests`): each
request arrives with the routing id of the connection it came on and its reply goes back on
exactly that connection. A peer that does not speak the protocol (raw TCP bytes, a message with
no envelope) is ignored, and it cannot take another client's reply. :class:`RequestChannel` is
the client side: one REQ socket with send/receive timeouts and no linger, replaced after a
missed reply (a REQ socket that missed one is stuck), with typed requests and replies, and
optionally several attempts (safe for the numbered requests of :mod:`takeover.app.net.once`,
which the server executes at most once, and for requests that change nothing).
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Callable
from typing import Any

import zmq

from takeover.app.net import curve
from takeover.app.net.messages import M, RefusedError, Request, decode_reply
from takeover.app.net.wire import MAX_MESSAGE_BYTES, WireError, error_reply

log = logging.getLogger(__name__)

Context = zmq.Context[zmq.Socket[bytes]]


class RequestChannel:
    """A REQ connection to one server. No I/O until :meth:`connect`.

    ``unavailable`` / ``rejected`` are the exception types raised when nobody answers in time /
    when the server answers with an error or nonsense; ``timeout_message`` and
    ``refused_message`` are format strings with ``{url}``, ``{type}``, ``{timeout}`` (and
    ``{error}``) telling the user what to do. ``attempts``: how many times a request is sent
    (on a fresh socket each time) before giving up; the ``timeout_s`` is shared among them.
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
        attempts: int = 1,
    ) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if not 1 <= attempts <= 10:
            raise ValueError(f"attempts must be in 1..10, got {attempts}")
        self.url = url
        self.timeout_s = float(timeout_s)
        self.keys = keys
        self.peer = peer
        self.attempts = attempts
        self._unavailable = unavailable
        self._rejected = rejected
        self._timeout_message = timeout_message
        self._refused_message = refused_message
        self._ctx: Context | None = None
        self._sock: zmq.Socket[bytes] | None = None
        self.resent = 0
        """Requests sent again after a missed reply."""

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

    def request(self, message: Request, reply: type[M]) -> M:
        """Send ``message``, return the server's reply of type ``reply``."""
        if self._sock is None:
            raise RuntimeError(f"{self.peer} at {self.url}: not connected (call connect() first)")
        fields = {"url": self.url, "type": message.TYPE, "timeout": self.timeout_s}
        payload = self._exchange(message.encode(), fields)
        try:
            return decode_reply(payload, reply)
        except RefusedError as exc:
            raise self._rejected(self._refused_message.format(error=exc, **fields)) from None
        except WireError as exc:
            raise self._rejected(f"{self.peer} at {self.url} sent an unreadable reply: {exc}") from None

    def _exchange(self, payload: bytes, fields: dict[str, Any]) -> bytes:
        for attempt in range(self.attempts):
            if attempt:
                self.resent += 1
            assert self._sock is not None
            try:
                self._sock.send(payload)
                return self._sock.recv()
            except zmq.Again:
                self._reset_socket()
            except zmq.ZMQError as exc:
                self._reset_socket()
                raise self._unavailable(f"{self.peer} at {self.url}: {exc}") from exc
        raise self._unavailable(self._timeout_message.format(**fields))

    def _new_socket(self) -> zmq.Socket[bytes]:
        assert self._ctx is not None
        sock = self._ctx.socket(zmq.REQ)
        ms = max(1, int(self.timeout_s * 1000 / self.attempts))
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


def split_envelope(frames: list[bytes]) -> tuple[list[bytes], list[bytes]] | None:
    """``(envelope, body)`` of a message read from a ROUTER socket: the routing id(s) up to the
    empty delimiter a REQ (or DEALER speaking REQ's envelope) puts there. None when there is no
    delimiter: the peer does not speak the protocol, and gets no reply."""
    for i in range(1, len(frames)):
        if not frames[i]:
            return frames[:i], frames[i + 1 :]
    return None


def serve_requests(
    sock: zmq.Socket[bytes],
    handle: Callable[[list[bytes]], bytes],
    stop: threading.Event,
    poll_ms: int,
    on_failure: Callable[[], None] | None = None,
    on_idle: Callable[[], None] | None = None,
) -> None:
    """Answer requests on a ROUTER socket until ``stop`` is set (checked every ``poll_ms``).

    ``handle`` turns one request's body frames into the encoded reply, which goes back to the
    connection the request came on; if it raises, that sender gets an error reply anyway and
    ``on_failure`` runs. ``on_idle`` runs when no request came for ``poll_ms``.
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
            if on_idle is not None:
                on_idle()
            continue
        split = split_envelope(sock.recv_multipart())
        if split is None:
            log.debug("ignored a message without an envelope")
            continue
        envelope, body = split
        try:
            reply = handle(body)
        except Exception as exc:
            log.exception("request handler failed")
            if on_failure is not None:
                on_failure()
            reply = error_reply(
                f"internal server error ({type(exc).__name__}); the server's log has the details"
            )
        # Without ROUTER_MANDATORY a reply to a peer that has gone is dropped, never blocks.
        sock.send_multipart([*envelope, b"", reply])


def bind_socket(
    ctx: Context,
    kind: int,
    endpoint: str,
    keys: curve.ServerKeys | None,
    what: str,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> tuple[zmq.Socket[bytes], str]:
    """A socket of ``kind`` bound to ``endpoint`` (``tcp://host:0`` picks a free port), a CURVE
    server when ``keys`` are given (the context's authenticator must run), taking messages of at
    most ``max_bytes``; returns it with the endpoint actually bound. OSError names ``what``."""
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, max_bytes)
    if keys is not None:
        curve.make_server(sock, keys)
    target = endpoint[:-2] + ":*" if endpoint.startswith("tcp://") and endpoint.endswith(":0") else endpoint
    try:
        sock.bind(target)
    except zmq.ZMQError as exc:
        sock.close(0)
        raise OSError(f"cannot bind the {what} to {endpoint}: {exc}") from exc
    last = sock.getsockopt(zmq.LAST_ENDPOINT)
    return sock, last.decode() if isinstance(last, bytes) else str(last)


class ReplySocket:
    """A bound ROUTER socket with its own context and, for CURVE, its authenticator. Use :meth:`bind`."""

    def __init__(self, ctx: Context, sock: zmq.Socket[bytes], auth: Any, endpoint: str) -> None:
        self.ctx, self.sock, self._auth, self.endpoint = ctx, sock, auth, endpoint

    @classmethod
    def bind(
        cls, endpoint: str, keys: curve.ServerKeys | None, what: str, max_bytes: int = MAX_MESSAGE_BYTES
    ) -> ReplySocket:
        ctx: Context = zmq.Context()
        auth = curve.start_authenticator(ctx, keys) if keys is not None else None
        try:
            sock, bound = bind_socket(ctx, zmq.ROUTER, endpoint, keys, what, max_bytes)
        except OSError:
            if auth is not None:
                auth.stop()
            ctx.term()
            raise
        return cls(ctx, sock, auth, bound)

    def close(self) -> None:
        self.sock.close(0)
        if self._auth is not None:
            self._auth.stop()
        self.ctx.term()
