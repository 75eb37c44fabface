"""The one codec of Takeover: msgpack with explicit numpy encoding, for every wire and for the
write-ahead log. No pickle.

A numpy array is the msgpack extension type :data:`ARRAY_EXT` whose payload is itself msgpack:
``[dtype, shape, data]`` with ``dtype`` numpy's exact type string (``"<f4"``, ``"|u1"``, ``"|b1"``),
``shape`` a list of non-negative integers and ``data`` the C-ordered bytes. Only bool, integer
and float dtypes exist here: nothing decoded can make the reader run code.

Decoding is strict: map keys are strings and appear once, an array's fields have exactly those
types (a shape of ``"4"``, ``[4.0]`` or ``{"4": 0}`` is refused, never coerced), its byte count
matches dtype and shape, and no other extension type is accepted. Every refusal is a
:class:`CodecError` whose message says what was wrong, in a few words and a capped excerpt of the
input, never a library's own wording.

:func:`unpack_log` also reads the array form of write-ahead logs written before this codec, the
one-key map ``{"__nd__": [dtype, shape, data]}``, so an unfinished attempt from then still
recovers.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import msgpack
import numpy as np

ARRAY_EXT = 1
"""msgpack extension type code of a numpy array."""
ARRAY_KINDS = frozenset("biuf")
"""numpy dtype kinds that may be encoded: bool, signed and unsigned integers, floats."""
MAX_DIMS = 32
MAX_DEPTH = 64
"""Deepest nesting of maps and lists a message may have."""
LEGACY_ARRAY_KEY = "__nd__"
BRIEF_CHARS = 60


class CodecError(ValueError):
    """Bytes that are not a value of this codec; the message says what is wrong."""


def brief(value: Any, limit: int = BRIEF_CHARS) -> str:
    """A short, safe excerpt of ``value`` for an error message (long input is cut, with its size)."""
    if isinstance(value, np.ndarray):
        return f"array of dtype {value.dtype} and shape {value.shape}"
    text = repr(value)
    if len(text) <= limit:
        return text
    if isinstance(value, str):
        size = f"{len(value)} characters"
    elif isinstance(value, bytes):
        size = f"{len(value)} bytes"
    elif isinstance(value, dict | list | tuple):
        size = f"{len(value)} items"
    else:
        size = f"{len(text)} characters"
    return f"{text[:limit]}... ({size})"


def type_name(value: Any) -> str:
    """What kind of value this is, in the codec's words (a map, a list, a string, ...)."""
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    return _TYPE_NAMES.get(type(value), "a value of an unknown type")


_TYPE_NAMES: dict[type, str] = {
    type(None): "nil",
    int: "an integer",
    float: "a float",
    str: "a string",
    bytes: "bytes",
    list: "a list",
    dict: "a map",
    msgpack.Timestamp: "a timestamp",
}


# -- encoding -------------------------------------------------------------------------------------


class _Packers(threading.local):
    """One packer per thread for array payloads: packing them with a new packer from inside the
    outer packer's ``default`` costs several times more than the whole record otherwise."""

    def __init__(self) -> None:
        self.array = msgpack.Packer(use_bin_type=True)


_PACKERS = _Packers()


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in ARRAY_KINDS or obj.dtype.fields is not None:
            raise TypeError(f"cannot encode an array of dtype {obj.dtype} (only bool, int, uint, float)")
        arr = np.ascontiguousarray(obj).reshape(obj.shape)  # ascontiguousarray makes 0-d arrays 1-d
        fields = [arr.dtype.str, list(arr.shape), arr.tobytes()]
        return msgpack.ExtType(ARRAY_EXT, _PACKERS.array.pack(fields))
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot encode {type(obj).__name__}")


def pack(obj: Any) -> bytes:
    """Encode maps, lists, tuples (as lists), strings, bytes, numbers, bools, nil and arrays."""
    out = msgpack.packb(obj, default=_default, use_bin_type=True)
    assert isinstance(out, bytes)
    return out


# -- decoding -------------------------------------------------------------------------------------


def _array(fields: Any) -> np.ndarray:
    """An array from its ``[dtype, shape, data]`` triple, checked field by field."""
    if not isinstance(fields, list) or len(fields) != 3:
        raise CodecError(f"an array must be [dtype, shape, data], got {brief(fields)}")
    dtype_str, shape, data = fields
    if not isinstance(dtype_str, str):
        raise CodecError(f"an array's dtype must be a string like '<f4', got {type_name(dtype_str)}")
    try:
        dtype = np.dtype(dtype_str)
    except (TypeError, ValueError):
        raise CodecError(f"array dtype {brief(dtype_str)} is not a numpy dtype") from None
    if dtype.kind not in ARRAY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise CodecError(f"array dtype {brief(dtype_str)} is not allowed (only bool, int, uint, float)")
    if dtype.str != dtype_str:
        raise CodecError(f"array dtype must be written {dtype.str!r}, got {brief(dtype_str)}")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_DIMS
        or not all(type(n) is int and n >= 0 for n in shape)
    ):
        raise CodecError(
            f"an array's shape must be a list of at most {MAX_DIMS} non-negative integers, got {brief(shape)}"
        )
    if not isinstance(data, bytes):
        raise CodecError(f"an array's data must be bytes, got {type_name(data)}")
    expected = math.prod(shape) * dtype.itemsize
    if expected != len(data):
        raise CodecError(
            f"an array of shape {tuple(shape)} and dtype {dtype.str} needs {expected} bytes, got {len(data)}"
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def _ext(code: int, payload: bytes) -> np.ndarray:
    if code != ARRAY_EXT:
        raise CodecError(f"unknown extension type {code} (only {ARRAY_EXT}, an array)")
    try:
        fields = msgpack.unpackb(payload, raw=False, strict_map_key=False, use_list=True)
    except Exception:  # msgpack raises several unrelated types for bad bytes
        raise CodecError("an array's header is not readable") from None
    return _array(fields)


def _pairs(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if not isinstance(key, str):
            raise CodecError(f"map keys must be strings, got {type_name(key)} {brief(key)}")
        if key in out:
            raise CodecError(f"map key {brief(key)} appears twice")
        out[key] = value
    return out


def _legacy_pairs(pairs: list[tuple[Any, Any]]) -> Any:
    if len(pairs) == 1 and pairs[0][0] == LEGACY_ARRAY_KEY:
        return _array(pairs[0][1])
    return _pairs(pairs)


def _unpack(data: bytes, pairs_hook: Callable[[list[tuple[Any, Any]]], Any]) -> Any:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CodecError(f"expected bytes to decode, got {type(data).__name__}")
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=False,  # keys are checked by the hook, in our words
            object_pairs_hook=pairs_hook,
            ext_hook=_ext,
        )
    except CodecError:
        raise
    except msgpack.ExtraData as exc:
        raise CodecError(f"{len(exc.extra)} extra byte(s) after the end of the value") from None
    except msgpack.StackError:
        raise CodecError("nested too deeply") from None
    except UnicodeDecodeError:
        raise CodecError("a string is not valid UTF-8") from None
    except msgpack.FormatError:
        raise CodecError("not msgpack (a byte that starts no msgpack value)") from None
    except ValueError as exc:
        text = str(exc)
        if "incomplete" in text:
            raise CodecError("the bytes end in the middle of a value (truncated)") from None
        if "exceeds max_" in text:
            raise CodecError("a string, list or map claims more than the bytes hold") from None
        raise CodecError("not msgpack") from None
    except Exception:  # anything else msgpack may raise on hostile bytes
        raise CodecError("not msgpack") from None


def _check_nesting(value: Any, depth: int = 0) -> None:
    """Refuse values nested deeper than :data:`MAX_DEPTH`, and msgpack timestamps (which msgpack
    decodes on its own, before any hook sees them)."""
    if depth > MAX_DEPTH:
        raise CodecError(f"nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        for v in value.values():
            _check_nesting(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_nesting(v, depth + 1)
    elif isinstance(value, msgpack.Timestamp):
        raise CodecError("timestamps are not part of this codec (send seconds as a float)")


def unpack(data: bytes) -> Any:
    """Decode what :func:`pack` wrote; refuse anything else with a :class:`CodecError`."""
    value = _unpack(data, _pairs)
    _check_nesting(value)
    return value


def unpack_log(data: bytes) -> Any:
    """:func:`unpack` for write-ahead log records, which may also hold arrays in the form logs had
    before this codec (``{"__nd__": [dtype, shape, data]}``)."""
    value = _unpack(data, _legacy_pairs)
    _check_nesting(value)
    return value
