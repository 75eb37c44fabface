"""Fuzz the policy server: wrong requests get readable errors and never reach the policy."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from takeover.app.net.wire import MAX_MESSAGE_BYTES, encode
from takeover.app.policy.protocol import MAX_REQUEST_BYTES
from takeover.app.policy.server import PolicyServer, ServerConfig

STATE = np.linspace(-0.5, 0.5, 39).astype(np.float32)


class CountingPolicy:
    policy_id = "counting-0"

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, state: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.zeros((4, 4), np.float32)


def _valid_state(s: Any) -> bool:
    if not (isinstance(s, np.ndarray) and s.dtype.kind == "f" and s.shape == (39,)):
        return False
    with np.errstate(over="ignore"):
        return bool(np.all(np.isfinite(s.astype(np.float32))))


def _valid_step(s: Any) -> bool:
    return type(s) is int and s >= 0


def test_policy_server(fz: SimpleNamespace) -> None:
    policy = CountingPolicy()
    server = PolicyServer(ServerConfig(endpoint="tcp://127.0.0.1:*", poll_ms=20), policy)
    live = fz.start_live(server)
    schema = fz.Schema(
        valid=({"type": "health"}, {"type": "infer", "state": STATE, "step": 3}),
        bad_fields={
            "state": st.one_of(
                fz.values,
                fz.any_arrays,
                fz.malformed_nd,
                st.just(np.full(39, 1e300)),  # finite as float64, inf as float32
                st.floats(3.5e38, 1e308).map(lambda x: np.full(39, x)),
            ).filter(lambda s: not _valid_state(s)),
            "step": st.one_of(fz.values, st.integers(-(2**63), -1)).filter(lambda s: not _valid_step(s)),
        },
        required=frozenset({"state", "step"}),
    )
    fuzzed = 0

    @settings(fz.FUZZ, max_examples=fz.MIN_CASES["policy"])
    @given(frames=fz.bad_requests(schema))
    def run(frames: list[bytes]) -> None:
        nonlocal fuzzed
        fuzzed += 1
        fz.readable_error(live.ask(frames))

    try:
        run()
        for size in (MAX_REQUEST_BYTES + 1, 8 * 1024 * 1024, MAX_MESSAGE_BYTES):
            assert "exceeds" in fz.readable_error(live.ask([b"\x00" * size]))
        # beyond MAXMSGSIZE: dropped by ZeroMQ, no reply
        live.sock.setsockopt(zmq.RCVTIMEO, 1000)
        live.sock.send(b"\x00" * (MAX_MESSAGE_BYTES + 1024))
        with pytest.raises(zmq.Again):
            live.sock.recv()
        live.reconnect()
        assert policy.calls == 0, "a refused request reached the policy"
        assert live.thread.is_alive()
        reply = live.ask([encode({"type": "infer", "state": STATE, "step": 0})])
        assert reply["ok"] is True and policy.calls == 1
    finally:
        fz.stop_live(live)
    assert fuzzed >= fz.MIN_CASES["policy"]
