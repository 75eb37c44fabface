"""A :class:`~takeover.app.station.base.Station` on the other end of the station protocol.

The control loop uses it exactly like an in-process station. Each call is one request/reply
with send and receive timeouts; when the server does not answer in time the call raises
:class:`StationUnavailableError` and the socket is replaced (a REQ socket that missed a reply
is stuck), so the next call can succeed. An error reply raises :class:`StationRejectedError`.
Replies are checked against the protocol and the station's declared info before use.
Not thread-safe: one RemoteStation per thread.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from takeover.app.net import curve
from takeover.app.net.rpc import RequestChannel
from takeover.app.station.base import Observation, Station, StationInfo
from takeover.app.station.protocol import (
    DEFAULT_STATION_ENDPOINT,
    STATION_PROTOCOL,
    ProtocolError,
    info_from_wire,
    observation_from_wire,
)


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
        )
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

    def health(self) -> dict[str, Any]:
        """The server's health reply (``protocol``, ``info``, ``uptime_s``, ``served``, ``moves``...)."""
        reply = self._request({"type": "health"}, "health")
        reply.pop("v", None)
        return reply

    def observe(self) -> Observation:
        """The latest observation, without acting."""
        return self._observation(self._request({"type": "observe"}, "observation"))

    def reset(self, seed: int | None = None) -> Observation:
        return self._observation(self._request({"type": "reset", "seed": seed}, "observation"))

    def act(self, action: np.ndarray) -> Observation:
        message = {"type": "act", "action": np.asarray(action, dtype=np.float32)}
        return self._observation(self._request(message, "observation"))

    def expert_action(self) -> np.ndarray | None:
        action = self._request({"type": "expert"}, "expert").get("action")
        if action is None:
            return None
        if not isinstance(action, np.ndarray) or action.shape != (self.info.action_dim,):
            raise StationRejectedError(f"station at {self.url} sent a malformed expert action")
        return action.astype(np.float32)

    # -- internals -------------------------------------------------------------------------------

    def _read_info(self, health: dict[str, Any]) -> StationInfo:
        if health.get("protocol") != STATION_PROTOCOL:
            raise StationRejectedError(
                f"station at {self.url} speaks protocol {health.get('protocol')!r}; "
                f"this client speaks {STATION_PROTOCOL}"
            )
        try:
            return info_from_wire(health.get("info"))
        except ProtocolError as exc:
            raise StationRejectedError(f"station at {self.url}: {exc}") from None

    def _observation(self, reply: dict[str, Any]) -> Observation:
        try:
            return observation_from_wire(reply.get("obs"), self.info)
        except ProtocolError as exc:
            raise StationRejectedError(f"station at {self.url} sent a bad observation: {exc}") from None

    def _request(self, message: dict[str, Any], expect_type: str) -> dict[str, Any]:
        return self._channel.request(message, expect_type)
