"""A :class:`~takeover.app.station.base.Station` on the other end of the station protocol.

The control loop uses it exactly like an in-process station. Each call is one request/reply
with send and receive timeouts. A request whose reply does not come is sent again on a fresh
socket (``attempts`` in all, sharing ``timeout_s``); moves (``act``, ``reset``) carry this
client's id and number, so the server executes each at most once and answers a retry with the
first reply: a lost reply never leaves the caller unsure whether the robot moved, and never
moves it twice. When no attempt is answered the call raises :class:`StationUnavailableError`;
an error reply raises :class:`StationRejectedError`. Replies are checked against the protocol
and the station's declared info before use. Not thread-safe: one RemoteStation per thread.

The station stamps its observations with its own clock. Every reply carries that clock's
readings, so every round trip (a burst of ``clock_burst`` side-effect-free ``clock`` requests at
:meth:`~RemoteStation.connect` and at each :meth:`~RemoteStation.reset`, then every ``act`` of
an attempt, and a bare ``clock`` request after an ``act`` every ``clock_interval_s``: an ``act``'s
reply carries images, which make it slower than its request, so its midpoint is a worse sample)
feeds a :class:`~takeover.app.station.clock.ClockSync`; each observation's times are
rebased onto this computer's clock with the estimate of that moment before the caller sees
them, and the raw ones kept in :attr:`Observation.station_times`
(:class:`~takeover.app.station.base.SyncsClock`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

import numpy as np

from takeover.app.net import curve
from takeover.app.net.once import Numbering
from takeover.app.net.rpc import RequestChannel
from takeover.app.station.base import Observation, Station, StationInfo, StationTimes
from takeover.app.station.clock import ClockSample, ClockSync, OffsetEstimate
from takeover.app.station.protocol import (
    DEFAULT_STATION_ENDPOINT,
    STATION_PROTOCOL,
    Act,
    ClockReply,
    Expert,
    ExpertReply,
    Health,
    HealthReply,
    ObservationReply,
    Observe,
    ProtocolError,
    ReadClock,
    Request,
    Reset,
    StationReply,
    check_info,
    check_observation,
)

ATTEMPTS = 2
"""Times a request is sent before the call gives up (they share the timeout)."""
CLOCK_BURST = 16
"""Round trips taken at connect and at each reset for the clock offset estimate."""
CLOCK_INTERVAL_S = 1.0
"""During an attempt, a bare ``clock`` round trip at least this often (after an ``act``)."""

R = TypeVar("R", bound=StationReply | HealthReply)


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
        clock: Callable[[], float] = time.monotonic,
        clock_burst: int = CLOCK_BURST,
        clock_interval_s: float = CLOCK_INTERVAL_S,
    ) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if not 1 <= clock_burst <= 1000:
            raise ValueError(f"clock_burst must be in 1..1000, got {clock_burst}")
        if not clock_interval_s > 0:
            raise ValueError(f"clock_interval_s must be positive, got {clock_interval_s}")
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
        self.clock = clock
        """This computer's monotonic clock (the engine's), which observations are rebased onto."""
        self.clock_burst = clock_burst
        self.clock_interval_s = float(clock_interval_s)
        self._clock_read_at = -float("inf")
        self.sync = ClockSync()
        """Every round trip to the station, as a sample of its clock's offset from :attr:`clock`."""

    # -- lifecycle -------------------------------------------------------------------------------

    def connect(self) -> None:
        """Connect and read the station's info (raises :class:`StationUnavailableError` if none answers)."""
        if self._channel.connected:
            return
        self._channel.connect()
        self.sync.clear()
        try:
            self._info = self._read_info(self.health())
            self.sync_clock()
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
        return self._request(Health(), HealthReply)

    def observe(self) -> Observation:
        """The latest observation, without acting."""
        return self._observation(self._request(Observe(), ObservationReply))

    def reset(self, seed: int | None = None) -> Observation:
        self.sync_clock()
        request = Reset(self._numbering.client, self._numbering.next(), seed)
        return self._observation(self._request(request, ObservationReply))

    def act(self, action: np.ndarray) -> Observation:
        request = Act(self._numbering.client, self._numbering.next(), np.asarray(action, dtype=np.float32))
        reply = self._request(request, ObservationReply)
        if self.clock() - self._clock_read_at >= self.clock_interval_s:  # after the robot has its command
            self.sync_clock(1)
        return self._observation(reply)

    def sync_clock(self, round_trips: int = 0) -> OffsetEstimate | None:
        """Take ``round_trips`` (default ``clock_burst``) side-effect-free round trips for the clock
        estimate and return it."""
        for _ in range(round_trips or self.clock_burst):
            self._request(ReadClock(), ClockReply)
        self._clock_read_at = self.clock()
        return self.sync.estimate()

    def clock_estimate(self) -> OffsetEstimate | None:
        """The station's clock offset from :attr:`clock` (:class:`~takeover.app.station.base.SyncsClock`)."""
        return self.sync.estimate()

    def expert_action(self) -> np.ndarray | None:
        action = self._request(Expert(), ExpertReply).action
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

    def _request(self, request: Request, kind: type[R]) -> R:
        """One request and its reply, whose clock readings become a clock sample. The sample's bounds
        hold also for a reply to an earlier attempt of the request: that reply was made after the
        first attempt was sent."""
        sent = self.clock()
        reply = self._channel.request(request, kind)
        received = self.clock()
        if reply.clock is not None:  # only a health reply from an older server has none
            self.sync.add(ClockSample(sent, reply.clock.received, reply.clock.replied, received))
        return reply

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
            obs = check_observation(reply.obs, self.info)
        except ProtocolError as exc:
            raise StationRejectedError(f"station at {self.url} sent a bad observation: {exc}") from None
        estimate = self.sync.estimate()
        assert estimate is not None  # the reply's own round trip is a sample
        return rebase(obs, estimate)


def rebase(obs: Observation, estimate: OffsetEstimate) -> Observation:
    """``obs`` with its times on the local clock, its raw times kept in ``station_times`` with the
    estimate referred to the observation's own (local) time."""
    to_local = estimate.to_local
    t = to_local(obs.t)
    return replace(
        obs,
        t=t,
        image_times={name: to_local(t) for name, t in obs.image_times.items()},
        station_times=StationTimes(obs.t, dict(obs.image_times), estimate.moved_to(t)),
    )
