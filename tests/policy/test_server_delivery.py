"""The policy server over real sockets: garbage peers never cost a client its reply, and a state
that is not finite as float32 is bad input, not a policy failure."""

from __future__ import annotations

import logging
import random

import numpy as np
import pytest

from takeover.app.net.testing import RawClient, send_garbage
from takeover.app.net.wire import encode
from takeover.app.policy.client import PolicyClient
from takeover.app.policy.model import Policy

from .conftest import ServeFn

STATE = np.linspace(-0.5, 0.5, 39).astype(np.float32)
ROUNDS = 60


def test_garbage_tcp_peers_never_cost_a_client_its_reply(serve: ServeFn, policy: Policy) -> None:
    server = serve(policy)
    rng = random.Random(11)
    with PolicyClient(server.endpoint, timeout_s=2.0) as client:
        for step in range(ROUNDS):
            send_garbage(server.endpoint, rng)
            assert client.infer(STATE, step).step == step  # raises if its reply went elsewhere
    assert server.served == ROUNDS and server.errors == 0


def test_a_state_that_overflows_float32_is_bad_input(
    serve: ServeFn, policy: Policy, caplog: pytest.LogCaptureFixture
) -> None:
    server = serve(policy)
    caplog.set_level(logging.DEBUG, logger="takeover")
    state = np.full(39, 1e300)  # finite as float64; inf once cast to float32
    with RawClient(server.endpoint) as raw:
        for step in range(5):
            reply = raw.ask(encode({"type": "infer", "state": state, "step": step}))
            assert reply["ok"] is False
            assert "'state' is not a finite float32 at index 0 (1e+300)" in reply["error"]
            assert "policy failed" not in reply["error"]
        assert raw.ask(encode({"type": "infer", "state": STATE.astype(np.float64), "step": 5}))["ok"] is True
    assert server.served == 1 and server.errors == 5  # refused before the policy
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
