"""The message envelope shared by every ZeroMQ endpoint (station, policy, engine).

A message is one frame holding a map encoded by :mod:`takeover.storage.codec` (msgpack with
explicit numpy encoding, no pickle), with ``"v"`` (the wire version, :data:`WIRE_VERSION`) and
``"type"``. Replies carry ``"ok"``; an error reply is ``{"type": "error", "ok": false, "error":
<reason>}`` with the reason capped at :data:`MAX_ERROR_CHARS`. The fields of each message type
are declared once, as a frozen dataclass (:mod:`takeover.app.net.messages`).
"""

from __future__ import annotations

from typing import Any

from takeover.storage.codec import CodecError, brief, pack, type_name, unpack

WIRE_VERSION = 2
"""Version 2: arrays are a msgpack extension (version 1 sent them as ``{"__nd__": true, ...}`` maps)."""
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MAX_ERROR_CHARS = 300
ENVELOPE = frozenset({"v", "type", "ok"})


class WireError(ValueError):
    """A message that cannot be decoded or does not follow the schema; the text says what is wrong."""


def cap(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` cut to ``limit`` characters (an error reply never echoes input without bound)."""
    if len(text) <= limit:
        return text
    suffix = f"... ({len(text)} characters)"
    return text[: limit - len(suffix)] + suffix


def encode(message: dict[str, Any]) -> bytes:
    """Encode a message map (adds the wire version)."""
    return pack({"v": WIRE_VERSION, **message})


def decode(
    payload: bytes, expect_type: str | None = None, max_bytes: int = MAX_MESSAGE_BYTES
) -> dict[str, Any]:
    """Decode and check the envelope; raise :class:`WireError` with a readable reason."""
    if len(payload) > max_bytes:
        raise WireError(f"message of {len(payload)} bytes exceeds the limit of {max_bytes}")
    try:
        msg = unpack(payload)
    except CodecError as exc:
        raise WireError(f"undecodable message: {exc}") from None
    if not isinstance(msg, dict):
        raise WireError(f"a message must be a map, got {type_name(msg)}")
    if "v" not in msg:
        raise WireError(f"a message needs 'v', the wire version ({WIRE_VERSION})")
    version = msg["v"]
    if type(version) is not int or version != WIRE_VERSION:
        raise WireError(f"wire version {brief(version)} is not supported (expected {WIRE_VERSION})")
    kind = msg.get("type")
    if not isinstance(kind, str):
        raise WireError(f"a message needs a 'type' string, got {type_name(kind)}")
    if expect_type is not None and kind != expect_type:
        raise WireError(f"expected a '{expect_type}' message, got {brief(kind)}")
    return msg


ERROR_TYPE = "error"


def error_reply(reason: str) -> bytes:
    """The reply to a request that was refused or failed: ``reason`` says why, capped."""
    return encode({"type": ERROR_TYPE, "ok": False, "error": cap(reason)})


def error_reason(msg: dict[str, Any]) -> str | None:
    """The reason of a decoded error reply, None for any other message; WireError if malformed."""
    if msg["type"] != ERROR_TYPE:
        return None
    if (
        set(msg) != {"v", "type", "ok", "error"}
        or msg["ok"] is not False
        or not isinstance(msg["error"], str)
    ):
        raise WireError("a malformed error reply (it must be exactly ok: false and an 'error' string)")
    return cap(msg["error"])
