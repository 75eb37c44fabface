"""Live endpoints for the fuzz suite, each on a real loopback socket, and the wrong messages sent.

Servers are module-scoped (started once per file); a test checks afterwards that the serving
thread is alive, still answers a good request, and that nothing moved.
"""

from __future__ import annotations

import threading
import types
from dataclasses import dataclass
from typing import Any, Protocol

import msgpack
import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from takeover.app.net.testing import RawClient
from takeover.storage.codec import ARRAY_EXT


class Serving(Protocol):
    endpoint: str

    def bind(self) -> str: ...
    def serve_forever(self) -> None: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...


@dataclass
class Live:
    """A server running in a thread, and a raw REQ client to talk to it."""

    server: Any
    thread: threading.Thread
    client: RawClient

    @property
    def sock(self) -> zmq.Socket[bytes]:
        assert self.client.sock is not None
        return self.client.sock

    def send(self, frames: list[bytes]) -> bytes:
        return self.client.send(frames)

    def ask(self, frames: list[bytes]) -> dict[str, Any]:
        return self.client.ask(frames)

    def reconnect(self) -> None:
        """A fresh REQ socket (after one whose request was dropped without a reply)."""
        self.client.reconnect()


def start_live(server: Serving) -> Live:
    server.bind()
    thread = threading.Thread(target=server.serve_forever, name="fuzzed-server", daemon=True)
    thread.start()
    client = RawClient(server.endpoint, timeout_ms=10_000)
    client.connect()
    return Live(server, thread, client)


def stop_live(live: Live) -> None:
    live.client.close()
    live.server.stop()
    live.thread.join(timeout=5)
    assert not live.thread.is_alive(), "server thread did not stop"
    live.server.close()


# -- strategies for wrong messages ------------------------------------------------------------------

WIRE_V = 2
MIN_CASES = {"station/fake-robot": 450, "station/sim": 200, "policy": 350, "engine/command-decode": 350}
"""Generated cases each endpoint's test runs at the least (each test asserts its own count), so a
passing fuzz suite has run at least their sum, whatever order its tests ran in."""


def _array_ext(fields: Any) -> msgpack.ExtType:
    """The array extension holding ``fields`` in place of [dtype, shape, data], right or wrong."""
    return msgpack.ExtType(ARRAY_EXT, msgpack.packb(fields, use_bin_type=True))


def _nd(obj: Any) -> Any:
    """Encode numpy values like the codec does, but for any dtype (to test the receiver's refusal)."""
    if isinstance(obj, np.ndarray):
        return _array_ext([obj.dtype.str, list(obj.shape), obj.tobytes()])
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(type(obj).__name__)


def packb(obj: Any) -> bytes:
    out = msgpack.packb(obj, default=_nd, use_bin_type=True)
    assert isinstance(out, bytes)
    return out


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=12)
    | st.binary(max_size=16)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=8,
)
any_arrays = hnp.arrays(
    dtype=st.sampled_from(["<f4", ">f4", "<f8", "<f2", "<i4", "<i8", "|u1", "|b1", "<c8", "<U3", "<M8[s]"]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
)


def _strict_shape(v: Any) -> bool:
    return isinstance(v, list) and all(type(n) is int and n >= 0 for n in v)


loose_shapes = st.sampled_from(["4", [4.0], [4.9], {"4": 0}, [True], ["4"], 4, [4, 1.0], [-4], None]) | (
    values.filter(lambda v: not _strict_shape(v))
)
"""Shapes a lenient decoder would take for (4,) or coerce: each must be refused."""
loose_arrays = st.one_of(
    # a float32 array of 4 whose shape is written loosely
    loose_shapes.map(lambda shape: _array_ext(["<f4", shape, b"\x00" * 16])),
    # the right three fields, and more
    st.lists(values, min_size=1, max_size=3).map(lambda more: _array_ext(["<f4", [4], b"\x00" * 16, *more])),
    # a map instead of the [dtype, shape, data] list, with or without extra keys
    st.dictionaries(st.text(max_size=6), values, max_size=2).map(
        lambda extra: _array_ext({"dtype": "<f4", "shape": [4], "data": b"\x00" * 16, **extra})
    ),
    # the forms of wire version 1 and of the old write-ahead log, which no wire takes for an array
    st.just({"__nd__": True, "dtype": "<f4", "shape": [4], "data": b"\x00" * 16}),
    st.just({"__nd__": ["<f4", [4], b"\x00" * 16]}),
)
"""A float32 array of 4 written loosely (shape, extra or missing fields, old forms)."""
malformed_nd = st.one_of(
    loose_arrays,
    st.tuples(
        st.sampled_from(["O", "V8", "<U4", "float32", "f4", "bogus", "<f4", "(2,)<f4"]) | values,
        st.lists(st.integers(min_value=-5, max_value=10**12), max_size=4) | values,
        st.binary(max_size=64) | values,
    ).map(lambda f: _array_ext(list(f))),
    st.tuples(st.integers(0, 127).filter(lambda c: c != ARRAY_EXT), st.binary(max_size=16)).map(
        lambda cb: msgpack.ExtType(*cb)
    ),
    st.binary(max_size=32).map(lambda b: msgpack.ExtType(ARRAY_EXT, b)),
)
"""Array encodings that are wrong: loose arrays, bad dtypes and sizes, unknown extension types,
unreadable headers."""


@dataclass(frozen=True)
class Schema:
    """What one endpoint accepts, for generating requests that it must refuse."""

    valid: tuple[dict[str, Any], ...]
    """Valid request bodies (without "v")."""
    bad_fields: dict[str, Any]
    """Field name -> strategy of values that make any request carrying it invalid."""
    required: frozenset[str]
    """Fields whose absence makes a request invalid."""


def bad_requests(schema: Schema, multipart: bool = True) -> st.SearchStrategy[list[bytes]]:
    """Frames an endpoint with ``schema`` must answer with an error (never act on)."""
    valid_bytes = [packb({"v": WIRE_V, **m}) for m in schema.valid]
    types = {m["type"] for m in schema.valid}
    valid_msg = st.sampled_from(schema.valid)

    def truncate(p: bytes) -> st.SearchStrategy[list[bytes]]:
        return st.integers(0, len(p) - 1).map(lambda i: [p[:i]])

    def with_field(m: dict[str, Any]) -> st.SearchStrategy[list[bytes]]:
        names = [f for f in schema.bad_fields if f in m]
        if not names:
            return st.nothing()
        return st.sampled_from(names).flatmap(
            lambda f: schema.bad_fields[f].map(lambda bad: [packb({"v": WIRE_V, **m, f: bad})])
        )

    def loose_array_field(m: dict[str, Any]) -> st.SearchStrategy[list[bytes]]:
        names = [f for f, v in m.items() if isinstance(v, np.ndarray)]
        if not names:
            return st.nothing()
        return st.tuples(st.sampled_from(names), loose_arrays).map(
            lambda fa: [packb({"v": WIRE_V, **m, fa[0]: fa[1]})]
        )

    def without_field(m: dict[str, Any]) -> st.SearchStrategy[list[bytes]]:
        names = [f for f in m if f in schema.required]
        if not names:
            return st.nothing()
        return st.sampled_from(names).map(
            lambda f: [packb({"v": WIRE_V, **{k: v for k, v in m.items() if k != f}})]
        )

    def extra_field(m: dict[str, Any]) -> st.SearchStrategy[list[bytes]]:
        key = st.text(min_size=1, max_size=8).filter(lambda k: k not in m and k != "v")
        return st.tuples(key, values | malformed_nd).map(lambda kv: [packb({"v": WIRE_V, **m, kv[0]: kv[1]})])

    kinds = [
        st.binary(max_size=512).map(lambda b: [b]),
        st.sampled_from(valid_bytes).flatmap(truncate),
        st.tuples(valid_msg, values.filter(lambda v: v != WIRE_V)).map(
            lambda mv: [packb({**mv[0], "v": mv[1]})]
        ),
        st.tuples(valid_msg, values.filter(lambda t: not (isinstance(t, str) and t in types))).map(
            lambda mt: [packb({"v": WIRE_V, **mt[0], "type": mt[1]})]
        ),
        values.filter(lambda v: not isinstance(v, dict)).map(lambda v: [packb(v)]),
        valid_msg.flatmap(with_field),
        valid_msg.flatmap(loose_array_field),
        valid_msg.flatmap(without_field),
        valid_msg.flatmap(extra_field),
        malformed_nd.map(lambda nd: [packb(nd)]),
    ]
    if multipart:
        kinds.append(st.lists(st.sampled_from(valid_bytes) | st.binary(max_size=64), min_size=2, max_size=4))
    return st.one_of(kinds)


def readable_error(reply: dict[str, Any]) -> str:
    """The reason of an error reply; fails the test when the reply is not one."""
    assert reply.get("ok") is False and reply.get("type") == "error", reply
    reason = reply.get("error")
    assert isinstance(reason, str) and len(reason) > 5, reply
    return reason


FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)


@pytest.fixture(scope="session")
def fz() -> types.SimpleNamespace:
    """The helpers above, for the test modules (conftest modules are not importable by name)."""
    return types.SimpleNamespace(
        FUZZ=FUZZ,
        MIN_CASES=MIN_CASES,
        Schema=Schema,
        any_arrays=any_arrays,
        loose_arrays=loose_arrays,
        bad_requests=bad_requests,
        malformed_nd=malformed_nd,
        packb=packb,
        readable_error=readable_error,
        start_live=start_live,
        stop_live=stop_live,
        values=values,
    )
