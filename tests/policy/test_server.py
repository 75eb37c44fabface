"""The policy server and client over real ZeroMQ sockets on loopback."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import numpy as np
import pytest

from takeover.app.net.testing import RawClient
from takeover.app.net.wire import encode
from takeover.app.policy.client import ActionChunk, PolicyClient, PolicyRejectedError, PolicyUnavailableError
from takeover.app.policy.model import Policy
from takeover.app.policy.server import PolicyServer, ServerConfig

ServeFn = Callable[..., PolicyServer]

STATE = np.linspace(-0.5, 0.5, 39).astype(np.float32)


@pytest.fixture
def raw(served: PolicyServer) -> Iterator[RawClient]:
    """A bare REQ socket, to send bytes the client would never produce."""
    with RawClient(served.endpoint) as client:
        yield client


def infer(state: Any, step: Any = 0, **more: Any) -> bytes:
    """An 'infer' request as any client might send it (nothing checked on this side)."""
    return encode({"type": "infer", "state": state, "step": step, **more})


def _good_infer(sock: RawClient) -> None:
    reply = sock.ask(encode({"type": "infer", "state": STATE, "step": 3}))
    assert reply["ok"] is True and reply["type"] == "action_chunk"


def test_infer_and_health(served: PolicyServer, policy: Policy) -> None:
    with PolicyClient(served.endpoint, timeout_s=5.0) as client:
        health = client.health()
        assert health.policy_id == policy.policy_id
        assert health.horizon == policy.horizon and health.state_dim == 39 and health.action_dim == 4
        assert health.uptime_s >= 0.0
        chunk = client.infer(STATE, step=7)
    assert isinstance(chunk, ActionChunk)
    assert chunk.actions.dtype == np.float32 and chunk.actions.shape == (policy.horizon, 4)
    np.testing.assert_array_equal(chunk.actions, policy.predict(STATE))
    assert chunk.policy_id == policy.policy_id and chunk.step == 7
    assert 0.0 <= chunk.infer_ms <= chunk.round_trip_ms


def test_server_endpoint_is_the_bound_port(served: PolicyServer) -> None:
    assert served.endpoint.startswith("tcp://127.0.0.1:")
    assert int(served.endpoint.rsplit(":", 1)[1]) > 0


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xc1\xc1 not msgpack", "undecodable message: not msgpack"),
        (msgpack.packb([1, 2, 3]), "must be a map, got a list"),
        (msgpack.packb({"type": "infer"}), "needs 'v', the wire version"),
        (
            encode({"type": "teleport"}),
            r"unknown message type 'teleport'; expected one of \['deploy', 'health', 'infer'\]",
        ),
        (infer(np.zeros(38, np.float32)), r"shape \(39,\)"),
        (infer(np.zeros((3, 13), np.float32)), r"shape \(39,\)"),
        (infer(np.full(39, np.nan, np.float32)), "not a finite float32 at index 0"),
        (infer(np.full(39, 1e300)), r"not a finite float32 at index 0 \(1e\+300\)"),
        (infer(np.zeros(39, bool)), "must be a float array, got dtype bool"),
        (infer(np.zeros(39, np.int32)), "must be a float array, got dtype int32"),
        (infer([0.0] * 39), "'state' must be an array, got a list"),
        (infer(STATE, step=-1), "'step' must be a non-negative integer"),
        (infer(STATE, step=True), "'step' must be an integer, got a bool True"),
        (infer(STATE, step=3.0), "'step' must be an integer, got a float 3.0"),
        (encode({"type": "infer", "state": STATE}), r"missing field\(s\) 'step'"),
        (infer(STATE, extra=1), r"unexpected field\(s\) 'extra'"),
        ([encode({"type": "health"}), b"extra"], "single-part"),
    ],
)
def test_bad_requests_get_a_reason_and_the_server_keeps_serving(
    raw: RawClient, served: PolicyServer, payload: bytes | list[bytes], reason: str
) -> None:
    reply = raw.ask(payload)
    assert reply["ok"] is False and reply["type"] == "error"
    assert re.search(reason, reply["error"]), reply["error"]
    _good_infer(raw)
    assert served.errors == 1


class ExplodingPolicy:
    policy_id = "exploding-0"

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, state: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("matrix on fire")
        return np.zeros((2, 4), np.float32)


def test_exception_in_policy_answers_an_error_and_keeps_serving(serve: ServeFn) -> None:
    server = serve(ExplodingPolicy())
    with PolicyClient(server.endpoint, timeout_s=5.0) as client:
        with pytest.raises(PolicyRejectedError, match="policy failed: RuntimeError: matrix on fire"):
            client.infer(STATE, 0)
        chunk = client.infer(STATE, 1)
        assert chunk.actions.shape == (2, 4) and chunk.policy_id == "exploding-0"
        assert client.health().errors == 1


def test_rejection_is_a_kind_of_unavailability() -> None:
    # the control loop holds on PolicyUnavailableError; a refused request must not crash it
    assert issubclass(PolicyRejectedError, PolicyUnavailableError)


def test_client_times_out_quickly_on_a_dead_endpoint_and_can_retry(serve: ServeFn, policy: Policy) -> None:
    # reserve a free port, then leave it unserved
    probe = PolicyServer(ServerConfig(endpoint="tcp://127.0.0.1:*"), policy)
    url = probe.bind()
    probe.close()
    client = PolicyClient(url, timeout_s=0.3)
    client.connect()
    try:
        for _ in range(2):  # the socket is reset after a timeout, so a second try behaves the same
            t0 = time.monotonic()
            with pytest.raises(PolicyUnavailableError) as info:
                client.infer(STATE, 0)
            assert time.monotonic() - t0 < 1.5
        msg = str(info.value)
        assert f"no policy server answered at {url} within 0.3 s" in msg
        assert "takeover policy serve" in msg
        # a server appears on that port: the same client now gets answers
        serve(policy, endpoint=url)
        assert client.infer(STATE, 1).actions.shape == (policy.horizon, 4)
        assert client.health().policy_id == policy.policy_id
    finally:
        client.close()


def test_client_requires_connect() -> None:
    client = PolicyClient("tcp://127.0.0.1:9", timeout_s=0.1)
    with pytest.raises(RuntimeError, match="connect"):
        client.health()
    with pytest.raises(ValueError, match="timeout_s"):
        PolicyClient("tcp://127.0.0.1:9", timeout_s=0)


def test_server_config_keeps_to_loopback() -> None:
    with pytest.raises(ValueError, match="not on loopback"):
        ServerConfig(endpoint="tcp://0.0.0.0:5555")
    with pytest.raises(ValueError, match="needs CURVE keys"):
        ServerConfig(endpoint="tcp://0.0.0.0:5555", allow_remote=True)
    remote = ServerConfig(
        endpoint="tcp://0.0.0.0:5555",
        allow_remote=True,
        curve_secret_key="server.key_secret",
        curve_allowed_clients=("clients/",),
    )
    assert remote.allow_remote
    with pytest.raises(ValueError, match="must start with"):
        ServerConfig(endpoint="http://127.0.0.1:5555")


def test_stop_is_prompt(served: PolicyServer) -> None:
    t0 = time.monotonic()
    served.stop()
    # the serving thread checks every poll_ms (20 ms here); the fixture joins it afterwards
    time.sleep(0.05)
    assert time.monotonic() - t0 < 1.0
