"""The station protocol: the messages a station server and its clients exchange over ZeroMQ.

Each message is a frozen dataclass (:mod:`takeover.app.net.messages`): its fields are its wire
form, checked exactly (types and keys) on arrival. The station message set has its own version,
:data:`STATION_PROTOCOL`, reported in the ``health`` reply. See docs/protocol.md.

Requests (one frame each):

- :class:`Health`, :class:`Observe` (the latest observation; never moves the robot),
  :class:`Expert` (the task's scripted expert action, if the station has one), :class:`ReadClock`
  (nothing but the station's clock, for the client's clock offset estimate);
- :class:`Reset` and :class:`Act`, which move the robot: numbered per client and executed at most
  once (:mod:`takeover.app.net.once`).

Every reply carries the station's clock (:class:`ServerClock`) when the request arrived and when
the reply was made, so every round trip is a sample of the offset between the station's clock and
the client's (:mod:`takeover.app.station.clock`).

A server adds a request type by declaring its dataclass, adding it to :data:`REQUESTS` and
giving it a handler. Everything a server receives is checked here, before anything reaches the
station: a request that fails a check is answered with an error and the station is never called.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from takeover.app.net.messages import MessageTable, Reply, Request
from takeover.app.net.once import Sequenced
from takeover.app.net.wire import WireError
from takeover.app.station.base import Observation, StationInfo

STATION_PROTOCOL = 3
"""Version of the station message set (bumped on any incompatible change; 2: numbered moves;
3: every reply carries the station's clock, and the ``clock`` request)."""
DEFAULT_STATION_ENDPOINT = "tcp://127.0.0.1:5556"
MAX_REQUEST_BYTES = 1024 * 1024
"""Station requests are small; anything bigger is refused before decoding."""
MAX_SEED = 2**31 - 1


class ProtocolError(WireError):
    """A request or reply that breaks the station protocol; the message says how."""


@runtime_checkable
class Observable(Protocol):
    """A station that can read its sensors without acting (the bridge can; the simulator need not)."""

    def observe(self) -> Observation: ...


# -- requests -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Health(Request):
    TYPE: ClassVar[str] = "health"


@dataclass(frozen=True)
class Observe(Request):
    TYPE: ClassVar[str] = "observe"


@dataclass(frozen=True)
class Expert(Request):
    TYPE: ClassVar[str] = "expert"


@dataclass(frozen=True)
class ReadClock(Request):
    """Side-effect free: the reply's :class:`ServerClock` is all it is for."""

    TYPE: ClassVar[str] = "clock"


@dataclass(frozen=True)
class Reset(Sequenced):
    """Start an attempt (moves the robot home, or holds it)."""

    TYPE: ClassVar[str] = "reset"
    seed: int | None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.seed is not None and not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"'seed' must be nil or an integer in [0, {MAX_SEED}], got {self.seed}")


@dataclass(frozen=True)
class Act(Sequenced):
    """One control step: a float32 action of the station's ``action_dim``, within its limits."""

    TYPE: ClassVar[str] = "act"
    action: np.ndarray


REQUESTS = MessageTable[Request]([Health, Observe, Expert, ReadClock, Reset, Act])


# -- replies --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerClock:
    """The station's monotonic clock (s) when a request arrived and when its reply was made."""

    received: float
    replied: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.received) and math.isfinite(self.replied)):
            raise ValueError("the station's clock readings must be finite")


@dataclass(frozen=True, kw_only=True)
class StationReply(Reply):
    """A reply of the station protocol: every one carries the station's clock."""

    clock: ServerClock


@dataclass(frozen=True)
class ClockReply(StationReply):
    TYPE: ClassVar[str] = "clock"


@dataclass(frozen=True)
class HealthReply(Reply):
    """The version handshake, so readable across versions: the server's clock may be left out (a
    server before protocol 3 has none; the client then says which protocol it speaks)."""

    TYPE: ClassVar[str] = "health"
    protocol: int
    info: StationInfo
    uptime_s: float
    served: int
    """Requests answered with ok."""
    errors: int
    """Requests refused."""
    moves: int
    """Requests that moved the robot (``act`` and ``reset`` executed)."""
    replayed: int
    """Retried moves answered with their first reply, not executed again."""
    curve: bool
    clock: ServerClock | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class ObservationReply(StationReply):
    TYPE: ClassVar[str] = "observation"
    obs: Observation


@dataclass(frozen=True)
class ExpertReply(StationReply):
    TYPE: ClassVar[str] = "expert"
    action: np.ndarray | None


# -- checks ---------------------------------------------------------------------------------------


def parse_request(frames: list[bytes], info: StationInfo, max_bytes: int = MAX_REQUEST_BYTES) -> Request:
    """One request's frames checked against the protocol and the station's limits."""
    if len(frames) != 1:
        raise ProtocolError(f"expected a single-part message, got {len(frames)} parts")
    if len(frames[0]) > max_bytes:
        raise ProtocolError(f"request of {len(frames[0])} bytes exceeds the station limit of {max_bytes}")
    try:
        request = REQUESTS.decode(frames[0], max_bytes)
    except WireError as exc:
        raise ProtocolError(str(exc)) from None
    if isinstance(request, Act):
        return replace(request, action=check_action(request.action, info))
    return request


def check_action(value: np.ndarray, info: StationInfo) -> np.ndarray:
    """A valid action as native float32, or :class:`ProtocolError` naming what is wrong."""
    n = info.action_dim
    if value.dtype.kind != "f" or value.dtype.itemsize != 4:
        raise ProtocolError(f"'action' must have dtype float32, got {value.dtype}")
    if value.shape != (n,):
        raise ProtocolError(f"'action' must have shape ({n},), got {value.shape}")
    action = value.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(action))
    if bad.size:
        raise ProtocolError(f"'action' is NaN or Inf at index {int(bad[0])}")
    low = np.asarray(info.action_low, dtype=np.float32)
    high = np.asarray(info.action_high, dtype=np.float32)
    outside = np.flatnonzero((action < low) | (action > high))
    if outside.size:
        i = int(outside[0])
        raise ProtocolError(
            f"'action' is outside the station's limits at index {i}: "
            f"{float(action[i]):g} not in [{float(low[i]):g}, {float(high[i]):g}]"
        )
    return action


def observation_for_wire(obs: Observation) -> Observation:
    """``obs`` with the protocol's dtypes: float32 state and target, uint8 images, float times."""
    return replace(
        obs,
        t=float(obs.t),
        state=np.asarray(obs.state, dtype=np.float32),
        ee_target=np.asarray(obs.ee_target, dtype=np.float32),
        images={str(k): np.asarray(v, dtype=np.uint8) for k, v in obs.images.items()},
        image_times={str(k): float(v) for k, v in obs.image_times.items()},
        success=bool(obs.success),
    )


def _finite(value: float, name: str) -> float:
    if not math.isfinite(value):
        raise ProtocolError(f"{name} must be finite, got {value!r}")
    return value


def _vector(value: np.ndarray, name: str, n: int) -> np.ndarray:
    if value.dtype != np.float32 or value.shape != (n,):
        raise ProtocolError(
            f"observation '{name}' must be float32 of shape ({n},), got {value.dtype} {value.shape}"
        )
    return value


def check_observation(obs: Observation, info: StationInfo) -> Observation:
    """An observation received from a station, checked against what the station said it sends."""
    _vector(obs.state, "state", info.state_dim)
    _vector(obs.ee_target, "ee_target", 3)
    _finite(obs.t, "observation 't'")
    for name, img in obs.images.items():
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ProtocolError(f"image {name!r} must be uint8 (H, W, 3), got {img.dtype} {img.shape}")
    for name, t in obs.image_times.items():
        _finite(t, f"image time {name!r}")
    return obs


def check_info(info: StationInfo) -> StationInfo:
    """Station info that holds together: limits of ``action_dim`` finite numbers, an optional box."""
    if not (len(info.action_low) == len(info.action_high) == info.action_dim >= 1) or info.state_dim < 1:
        raise ProtocolError("station info: action limits must match action_dim >= 1, and state_dim >= 1")
    numbers = (
        info.rate_hz,
        *info.action_low,
        *info.action_high,
        *(info.workspace_low or ()),
        *(info.workspace_high or ()),
    )
    if not all(math.isfinite(x) for x in numbers) or info.rate_hz <= 0:
        raise ProtocolError("station info: rate_hz (positive), the action limits and the box must be finite")
    lo, hi = info.workspace_low, info.workspace_high
    if (lo is None) != (hi is None):
        raise ProtocolError("station info: workspace_low and workspace_high come together")
    if lo is not None and hi is not None and not all(a < b for a, b in zip(lo, hi, strict=True)):
        raise ProtocolError("station info: workspace_low must be below workspace_high on every axis")
    if not (math.isfinite(info.time_limit_s) and 0.0 <= info.time_limit_s <= 86400.0):
        raise ProtocolError("station info: time_limit_s must be 0 (none) to 86400 s")
    return info
