"""The station server: serves any :class:`~takeover.app.station.base.Station` on a ZeroMQ REP socket.

Every request is checked by :func:`takeover.app.station.protocol.parse_request` before the station
is touched; a request that fails a check, or a station that raises, is answered with a readable
error reply and the server goes on serving (a REP socket answers every request it receives).
Requests larger than the socket's ``MAXMSGSIZE`` (the wire limit) are dropped by ZeroMQ itself,
which disconnects that peer; nothing reaches the station either way.

Endpoints bind to loopback unless ``allow_remote`` is set, and a non-loopback endpoint needs
CURVE keys (:mod:`takeover.app.net.curve`): clients that are not on the allow-list get no reply.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from takeover.app.net import curve
from takeover.app.net.rpc import ReplySocket, serve_requests
from takeover.app.net.wire import MAX_MESSAGE_BYTES, encode, error_reply
from takeover.app.station.base import ExpertOracle, Observation, Station
from takeover.app.station.protocol import (
    DEFAULT_STATION_ENDPOINT,
    MAX_REQUEST_BYTES,
    STATION_PROTOCOL,
    Observable,
    ProtocolError,
    Request,
    info_to_wire,
    observation_to_wire,
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
        if bool(self.curve_secret_key) != bool(self.curve_allowed_clients):
            raise ValueError("CURVE needs both a server secret key and at least one allowed client key")
        curve.check_bind_policy(self.endpoint, self.allow_remote, self.uses_curve)
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
    (``act`` and ``reset``).
    """

    def __init__(self, station: Station, config: StationServerConfig | None = None) -> None:
        self.station = station
        self.config = config or StationServerConfig()
        self._rep: ReplySocket | None = None
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._last: Observation | None = None
        self.endpoint = ""
        """The bound endpoint (with the real port when bound to ``:*``)."""
        self.served = 0
        self.errors = 0
        self.moves = 0

    def bind(self) -> str:
        """Bind the socket; return the bound endpoint. The station is connected by :meth:`serve_forever`."""
        if self._rep is not None:
            return self.endpoint
        keys = None
        if self.config.uses_curve:
            keys = curve.ServerKeys.load(self.config.curve_secret_key, self.config.curve_allowed_clients)
        self._rep = ReplySocket.bind(self.config.endpoint, keys, "station server")
        self.endpoint = self._rep.endpoint
        self._t0 = time.monotonic()
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
        """One request's frames -> the encoded reply. The station is called only for valid requests."""
        try:
            request = parse_request(frames, self.station.info, self.config.max_request_bytes)
        except ProtocolError as exc:
            self.errors += 1
            return error_reply(str(exc))
        try:
            reply = self._dispatch(request)
        except Exception as exc:  # a station that refuses (e.g. act before reset) or fails
            self.errors += 1
            log.warning("station refused a %s request: %s", request.kind, exc)
            return error_reply(f"station refused '{request.kind}': {type(exc).__name__}: {exc}")
        self.served += 1
        return reply

    def _dispatch(self, request: Request) -> bytes:
        st = self.station
        if request.kind == "health":
            return self._health()
        if request.kind == "observe":
            if isinstance(st, Observable):
                self._last = st.observe()
            if self._last is None:
                raise RuntimeError("no observation yet: send 'reset' first")
            return self._observation(self._last)
        if request.kind == "expert":
            action = st.expert_action() if isinstance(st, ExpertOracle) else None
            return encode({"type": "expert", "ok": True, "action": action})
        if request.kind == "reset":
            self.moves += 1
            self._last = st.reset(request.seed)
            return self._observation(self._last)
        assert request.kind == "act" and request.action is not None
        self.moves += 1
        self._last = st.act(request.action)
        return self._observation(self._last)

    def _observation(self, obs: Observation) -> bytes:
        return encode({"type": "observation", "ok": True, "obs": observation_to_wire(obs)})

    def _health(self) -> bytes:
        body: dict[str, Any] = {
            "type": "health",
            "ok": True,
            "protocol": STATION_PROTOCOL,
            "info": info_to_wire(self.station.info),
            "uptime_s": time.monotonic() - self._t0,
            "served": self.served,
            "errors": self.errors,
            "moves": self.moves,
            "curve": self.config.uses_curve,
        }
        return encode(body)

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
