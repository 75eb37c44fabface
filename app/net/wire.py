"""The wire format shared by every ZeroMQ endpoint: msgpack with explicit numpy encoding.

A numpy array travels as ``{"__nd__": true, "dtype": "<f4", "shape": [..], "data": <bytes>}``.
Only plain dtypes (bool, integers, floats) are accepted; object arrays are refused, so nothing
on the wire can make the receiver run code. No pickle anywhere.

Every message is a map with ``"v"`` (the schema version) and ``"type"``; replies carry
``"ok"`` and, when it is false, a human-readable ``"error"``.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

WIRE_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_ALLOWED_KINDS = frozenset("biuf")


class WireError(ValueError):
    """A message that cannot be decoded or does not follow the schema."""


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in _ALLOWED_KINDS:
            raise TypeError(f"cannot send numpy dtype {obj.dtype} (only bool, int, uint, float)")
        arr = np.ascontiguousarray(obj)
        return {"__nd__": True, "dtype": arr.dtype.str, "shape": list(arr.shape), "data": arr.tobytes()}
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot encode {type(obj).__name__} on the wire")


def _object_hook(obj: dict[Any, Any]) -> Any:
    if obj.get("__nd__") is True:
        try:
            dtype = np.dtype(obj["dtype"])
            shape = tuple(int(s) for s in obj["shape"])
            data = obj["data"]
        except (KeyError, TypeError, ValueError) as exc:
            raise WireError(f"malformed array: {exc}") from exc
        if dtype.kind not in _ALLOWED_KINDS:
            raise WireError(f"array dtype {dtype} is not allowed")
        if not isinstance(data, bytes) or any(s < 0 for s in shape):
            raise WireError("malformed array payload")
        if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize != len(data):
            raise WireError(f"array of shape {shape} and dtype {dtype} does not match {len(data)} bytes")
        return np.frombuffer(data, dtype=dtype).reshape(shape).copy()
    return obj


def encode(message: dict[str, Any]) -> bytes:
    """Encode a message map (adds the schema version)."""
    body = {"v": WIRE_VERSION, **message}
    out = msgpack.packb(body, default=_default, use_bin_type=True)
    assert isinstance(out, bytes)
    return out


def decode(payload: bytes, expect_type: str | None = None) -> dict[str, Any]:
    """Decode and check a message; raise :class:`WireError` with a readable reason."""
    if len(payload) > MAX_MESSAGE_BYTES:
        raise WireError(f"message of {len(payload)} bytes exceeds the limit of {MAX_MESSAGE_BYTES}")
    try:
        msg = msgpack.unpackb(
            payload,
            object_hook=_object_hook,
            raw=False,
            strict_map_key=True,
        )
    except WireError:
        raise
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise WireError(f"undecodable message: {type(exc).__name__}: {exc}") from exc
    if not isinstance(msg, dict):
        raise WireError(f"message must be a map, got {type(msg).__name__}")
    version = msg.get("v")
    if type(version) is not int or version != WIRE_VERSION:
        raise WireError(f"wire version {version!r} is not supported (expected {WIRE_VERSION})")
    if not isinstance(msg.get("type"), str):
        raise WireError("message has no 'type'")
    if expect_type is not None and msg["type"] != expect_type:
        raise WireError(f"expected a '{expect_type}' message, got '{msg['type']}'")
    return msg


def error_reply(reason: str) -> bytes:
    return encode({"type": "error", "ok": False, "error": reason})
