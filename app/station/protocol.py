"""The station protocol: the messages a station server and its clients exchange over ZeroMQ.

Every message is a :mod:`takeover.app.net.wire` map (msgpack, explicit numpy encoding, no pickle)
with ``"v"`` (the wire schema version) and ``"type"``. The station message set has its own
version, :data:`STATION_PROTOCOL`, reported in the ``health`` reply. See docs/protocol.md.

Requests (one frame each; no other keys are allowed):

- ``{"type": "health"}``
- ``{"type": "observe"}`` — the latest observation; never moves the robot
- ``{"type": "reset", "seed": int in [0, 2**31) or nil}``
- ``{"type": "act", "action": float32 array (action_dim,), finite, within the action limits}``
- ``{"type": "expert"}`` — the task's scripted expert action, if the station has one

Replies carry ``"ok"``; an error reply is ``{"type": "error", "ok": false, "error": <reason>}``.

Everything a server receives is checked here, before anything reaches the station: a request
that fails a check is answered with an error and the station is never called.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from takeover.app.net.wire import WireError, decode
from takeover.app.station.base import Observation, StationInfo

STATION_PROTOCOL = 1
"""Version of the station message set (bumped on any incompatible change)."""
DEFAULT_STATION_ENDPOINT = "tcp://127.0.0.1:5556"
MAX_REQUEST_BYTES = 1024 * 1024
"""Station requests are small; anything bigger is refused before decoding."""
MAX_SEED = 2**31 - 1

REQUEST_FIELDS: dict[str, frozenset[str]] = {
    "health": frozenset(),
    "observe": frozenset(),
    "reset": frozenset({"seed"}),
    "act": frozenset({"action"}),
    "expert": frozenset(),
}


class ProtocolError(ValueError):
    """A request or reply that breaks the station protocol; the message says how."""


@runtime_checkable
class Observable(Protocol):
    """A station that can read its sensors without acting (the bridge can; the simulator need not)."""

    def observe(self) -> Observation: ...


@dataclass(frozen=True)
class Request:
    kind: str
    action: np.ndarray | None = None
    seed: int | None = None


# -- requests ------------------------------------------------------------------------------------


def parse_request(frames: list[bytes], info: StationInfo, max_bytes: int = MAX_REQUEST_BYTES) -> Request:
    """Check one request's frames against the protocol and the station's limits."""
    if len(frames) != 1:
        raise ProtocolError(f"expected a single-part message, got {len(frames)} parts")
    payload = frames[0]
    if len(payload) > max_bytes:
        raise ProtocolError(f"request of {len(payload)} bytes exceeds the station limit of {max_bytes}")
    try:
        msg = decode(payload)
    except WireError as exc:
        raise ProtocolError(str(exc)) from None
    kind = msg["type"]
    if kind not in REQUEST_FIELDS:
        raise ProtocolError(f"unknown request type {kind!r}; expected one of {sorted(REQUEST_FIELDS)}")
    extra = set(msg) - {"v", "type"} - REQUEST_FIELDS[kind]
    if extra:
        raise ProtocolError(f"unexpected field(s) {sorted(map(str, extra))} in a {kind!r} request")
    if kind == "act":
        if "action" not in msg:
            raise ProtocolError("an 'act' request needs an 'action'")
        return Request(kind, action=parse_action(msg["action"], info))
    if kind == "reset":
        return Request(kind, seed=parse_seed(msg.get("seed")))
    return Request(kind)


def parse_action(value: Any, info: StationInfo) -> np.ndarray:
    """A valid action as native float32, or :class:`ProtocolError` naming what is wrong."""
    n = info.action_dim
    if not isinstance(value, np.ndarray):
        raise ProtocolError(f"'action' must be a float32 array of shape ({n},), got {type(value).__name__}")
    if value.dtype.kind != "f" or value.dtype.itemsize != 4:
        raise ProtocolError(f"'action' must have dtype float32, got {value.dtype}")
    if value.shape != (n,):
        raise ProtocolError(f"'action' must have shape ({n},), got {value.shape}")
    action = value.astype(np.float32)
    if not np.all(np.isfinite(action)):
        raise ProtocolError(f"'action' contains NaN or Inf: {action.tolist()}")
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


def parse_seed(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise ProtocolError(f"'seed' must be nil or an integer in [0, {MAX_SEED}], got {value!r}")
    return value


# -- observations and station info ------------------------------------------------------------------


def observation_to_wire(obs: Observation) -> dict[str, Any]:
    return {
        "t": float(obs.t),
        "state": np.asarray(obs.state, dtype=np.float32),
        "ee_target": np.asarray(obs.ee_target, dtype=np.float32),
        "images": {str(k): np.asarray(v, dtype=np.uint8) for k, v in obs.images.items()},
        "image_times": {str(k): float(v) for k, v in obs.image_times.items()},
        "success": bool(obs.success),
    }


def _float_array(value: Any, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
        raise ProtocolError(f"observation '{name}' must be a float array, got {type(value).__name__}")
    if shape is not None and value.shape != shape:
        raise ProtocolError(f"observation '{name}' must have shape {shape}, got {value.shape}")
    return value.astype(np.float32)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProtocolError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def observation_from_wire(value: Any, info: StationInfo) -> Observation:
    """Check an observation received from a station against what the station said it sends."""
    if not isinstance(value, dict):
        raise ProtocolError(f"'obs' must be a map, got {type(value).__name__}")
    try:
        images_in, times_in = value["images"], value["image_times"]
        state = _float_array(value["state"], "state", (info.state_dim,))
        ee_target = _float_array(value["ee_target"], "ee_target", (3,))
        t = _number(value["t"], "observation 't'")
        success = value["success"]
    except KeyError as exc:
        raise ProtocolError(f"observation has no {exc}") from None
    if not isinstance(success, bool):
        raise ProtocolError(f"observation 'success' must be a bool, got {success!r}")
    if not isinstance(images_in, dict) or not isinstance(times_in, dict):
        raise ProtocolError("observation 'images' and 'image_times' must be maps")
    images: dict[str, np.ndarray] = {}
    for name, img in images_in.items():
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ProtocolError(f"image {name!r} must be uint8 (H, W, 3)")
        images[str(name)] = img
    times = {str(k): _number(v, f"image time {k!r}") for k, v in times_in.items()}
    return Observation(
        t=t, state=state, ee_target=ee_target, images=images, image_times=times, success=success
    )


def info_to_wire(info: StationInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "robot": info.robot,
        "task": info.task,
        "action_dim": info.action_dim,
        "state_dim": info.state_dim,
        "cameras": list(info.cameras),
        "rate_hz": info.rate_hz,
        "action_low": list(info.action_low),
        "action_high": list(info.action_high),
        **(
            {"workspace_low": list(info.workspace_low), "workspace_high": list(info.workspace_high)}
            if info.workspace_low is not None and info.workspace_high is not None
            else {}
        ),
    }


def _box(info: dict[str, Any], key: str) -> tuple[float, float, float] | None:
    """An optional corner of the workspace box: 3 finite numbers, or absent."""
    if key not in info:
        return None
    value = info[key]
    if not isinstance(value, list) or len(value) != 3:
        raise ValueError(f"{key!r} must be a list of 3 numbers")
    x, y, z = (_number(v, repr(key)) for v in value)
    return (x, y, z)


def info_from_wire(value: Any) -> StationInfo:
    if not isinstance(value, dict):
        raise ProtocolError(f"'info' must be a map, got {type(value).__name__}")
    try:
        info = StationInfo(
            name=str(value["name"]),
            robot=str(value["robot"]),
            task=str(value["task"]),
            action_dim=int(value["action_dim"]),
            state_dim=int(value["state_dim"]),
            cameras=tuple(str(c) for c in value["cameras"]),
            rate_hz=_number(value["rate_hz"], "'rate_hz'"),
            action_low=tuple(_number(x, "'action_low'") for x in value["action_low"]),
            action_high=tuple(_number(x, "'action_high'") for x in value["action_high"]),
            workspace_low=_box(value, "workspace_low"),
            workspace_high=_box(value, "workspace_high"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"malformed station info: {type(exc).__name__}: {exc}") from None
    if not (len(info.action_low) == len(info.action_high) == info.action_dim >= 1) or info.state_dim < 1:
        raise ProtocolError("station info: action limits must match action_dim >= 1, and state_dim >= 1")
    lo, hi = info.workspace_low, info.workspace_high
    if (lo is None) != (hi is None):
        raise ProtocolError("station info: workspace_low and workspace_high come together")
    if lo is not None and hi is not None and not all(a < b for a, b in zip(lo, hi, strict=True)):
        raise ProtocolError("station info: workspace_low must be below workspace_high on every axis")
    return info
