"""A :class:`~takeover.app.station.base.Station` on the other end of the station protocol.

The control loop uses it exactly like an in-process station. Each call is one request/reply
with send and receive timeouts. A request whose reply does not come is sent again on a fresh
socket (``attempts`` in all, sharing ``timeout_s``); moves (``act``, ``reset``) carry this
client's id and number, so the server executes each at most once and answers a retry with the
first reply: a lost reply never leaves the caller unsure whether the robot moved, and never
moves it twice. When no attempt is answered the call raises :class:`StationUnavailableError`;
an error reply raises :class:`StationRejectedError`. Replies are checked against the protocol
and the station's declared info before use. Not thread-safe: one RemoteStation per thread.
"""

from __future__ import annotations

import numpy as np

from takeover.app.net import curve
from takeover.app.net.once import Numbering
from takeover.app.net.rpc import RequestChannel
from takeover.app.station.base import Observation, Station, StationInfo
from takeover.app.station.protocol import (
    DEFAULT_STATION_ENDPOINT,
    STATION_PROTOCOL,
    Act,
    Expert,
    ExpertReply,
    Health,
    HealthReply,
    ObservationReply,
    Observe,
    ProtocolError,
    Reset,
    check_info,
    check_observation,
)

ATTEMPTS = 2
"""Times a request is sent before the call gives up (they share the timeout)."""


class StationUnavailableError(RuntimeError):
    """No usable answer from the station server in time."""


class StationRejectedError(StationUnavailableError):
    """The station server answered with an error (a bad request, or the station refused)."""


class RemoteStation(Station):
    """Client of a station server. No I/O until :meth:`connect`."""

    def __init__(
        self,
        url: str = DEFAULT_STATION_ENDPOINT,
        timeout_s: float = 2.0,
        keys: curve.ClientKeys | None = None,
        attempts: int = ATTEMPTS,
    ) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if not url.startswith(("tcp://", "ipc://", "inproc://")):
            raise ValueError(f"station url {url!r} must start with tcp://, ipc:// or inproc://")
        self.url = url
        self.timeout_s = float(timeout_s)
        self.keys = keys
        self._channel = RequestChannel(
            url,
            timeout_s,
            keys,
            peer="station",
            unavailable=StationUnavailableError,
            rejected=StationRejectedError,
            timeout_message="no station answered '{type}' at {url} within {timeout:g} s — "
            "is `takeover station serve` running there (and are the CURVE keys right)?",
            refused_message="station at {url} refused '{type}': {error}",
            attempts=attempts,
        )
        self._numbering = Numbering()
        self._info: StationInfo | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def connect(self) -> None:
        """Connect and read the station's info (raises :class:`StationUnavailableError` if none answers)."""
        if self._channel.connected:
            return
        self._channel.connect()
        try:
            self._info = self._read_info(self.health())
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._info = None
        self._channel.close()

    # -- station interface -----------------------------------------------------------------------

    @property
    def info(self) -> StationInfo:
        if self._info is None:
            raise RuntimeError("remote station is not connected: call connect() first")
        return self._info

    def health(self) -> HealthReply:
        """The server's health reply (``protocol``, ``info``, ``uptime_s``, ``served``, ``moves``...)."""
        return self._channel.request(Health(), HealthReply)

    def observe(self) -> Observation:
        """The latest observation, without acting."""
        return self._observation(self._channel.request(Observe(), ObservationReply))

    def reset(self, seed: int | None = None) -> Observation:
        request = Reset(self._numbering.client, self._numbering.next(), seed)
        return self._observation(self._channel.request(request, ObservationReply))

    def act(self, action: np.ndarray) -> Observation:
        request = Act(self._numbering.client, self._numbering.next(), np.asarray(action, dtype=np.float32))
        return self._observation(self._channel.request(request, ObservationReply))

    def expert_action(self) -> np.ndarray | None:
        action = self._channel.request(Expert(), ExpertReply).action
        if action is None:
            return None
        if action.dtype.kind != "f" or action.shape != (self.info.action_dim,):
            raise StationRejectedError(f"station at {self.url} sent a malformed expert action")
        return action.astype(np.float32)

    @property
    def resent(self) -> int:
        """Requests sent again after a reply did not come in time."""
        return self._channel.resent

    # -- internals -------------------------------------------------------------------------------

    def _read_info(self, health: HealthReply) -> StationInfo:
        if health.protocol != STATION_PROTOCOL:
            raise StationRejectedError(
                f"station at {self.url} speaks protocol {health.protocol}; "
                f"this client speaks {STATION_PROTOCOL}"
            )
        try:
            return check_info(health.info)
        except ProtocolError as exc:
            raise StationRejectedError(f"station at {self.url}: {exc}") from None

    def _observation(self, reply: ObservationReply) -> Observation:
        try:
            return check_observation(reply.obs, self.info)
        except ProtocolError as exc:
            raise StationRejectedError(f"station at {self.url} sent a bad observation: {exc}") from None
