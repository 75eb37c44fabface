"""msgpack with explicit numpy encoding for write-ahead log payloads. No pickle.

An array is the map ``{"__nd__": [dtype string, shape, raw bytes]}``; nothing else is special.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

_ND = "__nd__"


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError("object arrays cannot be encoded")
        a = np.ascontiguousarray(obj)
        return {_ND: [a.dtype.str, list(a.shape), a.tobytes()]}
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot encode {type(obj).__name__}")


def _hook(obj: dict[Any, Any]) -> Any:
    if len(obj) == 1 and _ND in obj:
        dtype, shape, data = obj[_ND]
        return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape).copy()
    return obj


def pack(obj: Any) -> bytes:
    return bytes(msgpack.packb(obj, default=_default, use_bin_type=True))


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, object_hook=_hook, raw=False, strict_map_key=False)
