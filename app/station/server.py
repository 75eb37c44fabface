"""The station server: serves any :class:`~takeover.app.station.base.Station` on a ZeroMQ ROUTER socket.

Every request is checked by :func:`takeover.app.station.protocol.parse_request` before the station
is touched; a request that fails a check, or a station that raises, is answered with a readable
error reply and the server goes on serving. Replies go back to the connection each request came
on (:func:`takeover.app.net.rpc.serve_requests`), so a peer that does not speak the protocol
cannot cost another client its reply. Requests that move the robot (``act``, ``reset``) are
executed at most once per client and number (:mod:`takeover.app.net.once`): a retry gets the
first reply back. Requests larger than the socket's ``MAXMSGSIZE`` (the wire limit) are dropped
by ZeroMQ itself, which disconnects that peer; nothing reaches the station either way.

Every reply carries the server's clock (``clock``, default ``time.monotonic``; a test injects a
skewed one) when the request arrived and when the reply was made, so clients can estimate the
offset of the station's clock from theirs (docs/protocol.md). A station that stamps its
observations must use the same clock.

Endpoints bind to loopback (or ``ipc://``) unless ``allow_remote`` is set, and a non-loopback
endpoint needs CURVE keys (:mod:`takeover.app.net.curve`): clients that are not on the
allow-list get no reply.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from takeover.app.net import curve
from takeover.app.net.once import ReplyLedger, Sequenced
from takeover.app.net.rpc import ReplySocket, serve_requests
from takeover.app.net.wire import MAX_MESSAGE_BYTES, WireError, error_reply
from takeover.app.station.base import ExpertOracle, Observation, Station
from takeover.app.station.protocol import (
    DEFAULT_STATION_ENDPOINT,
    MAX_REQUEST_BYTES,
    STATION_PROTOCOL,
    Act,
    ClockReply,
    Expert,
    ExpertReply,
    Health,
    HealthReply,
    Observable,
    ObservationReply,
    Observe,
    ReadClock,
    Request,
    Reset,
    ServerClock,
    observation_for_wire,
    parse_request,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StationServerConfig:
    endpoint: str = DEFAULT_STATION_ENDPOINT
    allow_remote: bool = False
    """Permit binding to an address other than loopback (then CURVE keys are required)."""
    curve_secret_key: str = ""
    """Server secret key file (``.key_secret``); setting it turns CURVE on, on any address."""
    curve_allowed_clients: tuple[str, ...] = ()
    """Client public key files, or directories of ``*.key`` files, that may connect."""
    poll_ms: int = 100
    max_request_bytes: int = MAX_REQUEST_BYTES

    def __post_init__(self) -> None:
        curve.check_server_security(
            (self.endpoint,), self.allow_remote, self.curve_secret_key, self.curve_allowed_clients
        )
        if not 1 <= self.poll_ms <= 10_000:
            raise ValueError(f"poll_ms must be in 1..10000, got {self.poll_ms}")
        if not 1 <= self.max_request_bytes <= MAX_MESSAGE_BYTES:
            raise ValueError(f"max_request_bytes must be in 1..{MAX_MESSAGE_BYTES}")

    @property
    def uses_curve(self) -> bool:
        return bool(self.curve_secret_key)


class StationServer:
    """Serve one station. No I/O in the constructor: :meth:`bind` binds the socket and
    :meth:`serve_forever` connects the station and serves.

    Counters (read them from the serving thread or after it has stopped): ``served`` requests
    answered with ok, ``errors`` requests refused, ``moves`` requests that moved the robot
    (``act`` and ``reset`` executed), ``ledger.replayed`` retries answered with their first reply.
    """

    def __init__(
        self,
        station: Station,
        config: StationServerConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.station = station
        self.config = config or StationServerConfig()
        self.clock = clock
        """The station computer's monotonic clock, read into every reply."""
        self._rep: ReplySocket | None = None
        self._stop = threading.Event()
        self._t0 = clock()
        self._last: Observation | None = None
        self.endpoint = ""
        """The bound endpoint (with the real port when bound to ``:*``)."""
        self.served = 0
        self.errors = 0
        self.moves = 0
        self.ledger = ReplyLedger()
        self.handlers: dict[type[Request], Callable[[Any, float], bytes]] = {
            Health: self._health,
            Observe: self._observe,
            Expert: self._expert,
            ReadClock: self._read_clock,
            Reset: self._reset,
            Act: self._act,
        }
        """What answers each request type of :data:`~takeover.app.station.protocol.REQUESTS`: called
        with the request and the server's clock when it arrived, it returns the encoded reply, made
        with ``clock=self.stamp(received)``."""

    def bind(self) -> str:
        """Bind the socket; return the bound endpoint. The station is connected by :meth:`serve_forever`."""
        if self._rep is not None:
            return self.endpoint
        keys = curve.load_server_keys(self.config.curve_secret_key, self.config.curve_allowed_clients)
        self._rep = ReplySocket.bind(self.config.endpoint, keys, "station server")
        self.endpoint = self._rep.endpoint
        self._t0 = self.clock()
        log.info("station %s serving on %s", self.station.info.name, self.endpoint)
        return self.endpoint

    def serve_forever(self) -> None:
        """Connect the station, then answer requests until :meth:`stop` is called (checked every
        ``poll_ms``). The station is connected here, in the serving thread, because simulators
        that render with OpenGL/EGL can only render in the thread that made their context."""
        self.bind()
        self.station.connect()
        assert self._rep is not None
        sock = self._rep.sock
        serve_requests(sock, self.handle, self._stop, self.config.poll_ms, on_failure=self._count_error)

    def _count_error(self) -> None:
        self.errors += 1

    def handle(self, frames: list[bytes]) -> bytes:
        """One request's frames -> the encoded reply. The station is called only for valid requests,
        and a numbered request only once."""
        received = self.clock()
        try:
            request = parse_request(frames, self.station.info, self.config.max_request_bytes)
            if isinstance(request, Sequenced) and (first := self.ledger.replay(request)) is not None:
                return first
        except WireError as exc:
            self.errors += 1
            return error_reply(str(exc))
        try:
            reply = self.handlers[type(request)](request, received)
        except Exception as exc:  # a station that refuses (e.g. act before reset) or fails
            self.errors += 1
            log.warning("station refused a %s request: %s", request.TYPE, exc)
            reply = error_reply(f"station refused '{request.TYPE}': {type(exc).__name__}: {exc}")
        else:
            self.served += 1
        if isinstance(request, Sequenced):
            self.ledger.record(request, reply)
        return reply

    def stamp(self, received: float) -> ServerClock:
        """The server's clock for a reply made now to a request that arrived at ``received``."""
        return ServerClock(received, self.clock())

    def _health(self, request: Health, received: float) -> bytes:
        return HealthReply(
            protocol=STATION_PROTOCOL,
            info=self.station.info,
            uptime_s=received - self._t0,
            served=self.served,
            errors=self.errors,
            moves=self.moves,
            replayed=self.ledger.replayed,
            curve=self.config.uses_curve,
            clock=self.stamp(received),
        ).encode()

    def _read_clock(self, request: ReadClock, received: float) -> bytes:
        return ClockReply(clock=self.stamp(received)).encode()

    def _observe(self, request: Observe, received: float) -> bytes:
        if isinstance(self.station, Observable):
            self._last = self.station.observe()
        if self._last is None:
            raise RuntimeError("no observation yet: send 'reset' first")
        return self._observation(self._last, received)

    def _expert(self, request: Expert, received: float) -> bytes:
        st = self.station
        action = st.expert_action() if isinstance(st, ExpertOracle) else None
        return ExpertReply(action, clock=self.stamp(received)).encode()

    def _reset(self, request: Reset, received: float) -> bytes:
        self.moves += 1
        self._last = self.station.reset(request.seed)
        return self._observation(self._last, received)

    def _act(self, request: Act, received: float) -> bytes:
        self.moves += 1
        self._last = self.station.act(request.action)
        return self._observation(self._last, received)

    def _observation(self, obs: Observation, received: float) -> bytes:
        return ObservationReply(observation_for_wire(obs), clock=self.stamp(received)).encode()

    def stop(self) -> None:
        """Ask :meth:`serve_forever` to return (safe from any thread or a signal handler)."""
        self._stop.set()

    def close(self) -> None:
        """Free the socket and close the station. Call it after :meth:`serve_forever` has returned."""
        self.stop()
        rep, self._rep = self._rep, None
        if rep is not None:
            rep.close()
        self.station.close()

    def __enter__(self) -> StationServer:
        self.bind()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
