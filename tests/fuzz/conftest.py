"""Live endpoints for the fuzz suite, each on a real loopback socket, and a case counter.

Servers are module-scoped (started once per file); a test checks afterwards that the serving
thread is alive, still answers a good request, and that nothing moved.
"""

from __future__ import annotations

import collections
import threading
import types
from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def cases() -> Iterator[collections.Counter[str]]:
    """Generated cases run, per endpoint (each test asserts its own minimum)."""
    counter: collections.Counter[str] = collections.Counter()
    yield counter
    if counter:
        print("\nfuzz cases per endpoint:", dict(counter), "total", sum(counter.values()))


# -- strategies for wrong messages ------------------------------------------------------------------

WIRE_V = 1


def _nd(obj: Any) -> Any:
    """Encode numpy values like the wire does, but for any dtype (to test the receiver's refusal)."""
    if isinstance(obj, np.ndarray):
        return {"__nd__": True, "dtype": obj.dtype.str, "shape": list(obj.shape), "data": obj.tobytes()}
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
malformed_nd = st.fixed_dictionaries(
    {"__nd__": st.just(True)},
    optional={
        "dtype": st.sampled_from(["O", "V8", "<U4", "float32", "f4", "bogus", "<f4"]) | values,
        "shape": st.lists(st.integers(min_value=-5, max_value=10**12), max_size=4) | values,
        "data": st.binary(max_size=64) | values,
    },
)


@dataclass(frozen=True)
class Schema:
    """What one endpoint accepts, for generating requests that it must refuse."""

    valid: tuple[dict[str, Any], ...]
    """Valid request bodies (without "v")."""
    bad_fields: dict[str, Any]
    """Field name -> strategy of values that make any request carrying it invalid."""
    required: frozenset[str]
    """Fields whose absence makes a request invalid."""
    strict: bool
    """Unknown fields make a request invalid."""


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

    def without_field(m: dict[str, Any]) -> st.SearchStrategy[list[bytes]]:
        names = [f for f in m if f in schema.required]
        if not names:
            return st.nothing()
        return st.sampled_from(names).map(
            lambda f: [packb({"v": WIRE_V, **{k: v for k, v in m.items() if k != f}})]
        )

    def extra_field(m: dict[str, Any]) -> st.SearchStrategy[list[bytes]]:
        key = st.text(min_size=1, max_size=8).filter(lambda k: k not in m and k != "v")
        return st.tuples(key, values).map(lambda kv: [packb({"v": WIRE_V, **m, kv[0]: kv[1]})])

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
        valid_msg.flatmap(without_field),
        st.tuples(valid_msg, malformed_nd).map(
            lambda mn: [packb({"v": WIRE_V, **mn[0], "payload": mn[1]})] if schema.strict else [packb(mn[1])]
        ),
    ]
    if multipart:
        kinds.append(st.lists(st.sampled_from(valid_bytes) | st.binary(max_size=64), min_size=2, max_size=4))
    if schema.strict:
        kinds.append(valid_msg.flatmap(extra_field))
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
        Schema=Schema,
        any_arrays=any_arrays,
        bad_requests=bad_requests,
        malformed_nd=malformed_nd,
        packb=packb,
        readable_error=readable_error,
        start_live=start_live,
        stop_live=stop_live,
        values=values,
    )
