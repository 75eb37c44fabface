"""Policy server extensions: loaders, extra outputs, open-loop horizon, timing, CURVE."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from takeover.app.net import curve
from takeover.app.net.testing import RawClient
from takeover.app.policy.client import PolicyClient, PolicyRejectedError, PolicyUnavailableError
from takeover.app.policy.loader import PolicyLoadError, is_entry_point, load_policy_from
from takeover.app.policy.model import Policy
from takeover.app.policy.server import PolicyOutput, PolicyServer, ServerConfig

ServeFn = Callable[..., PolicyServer]
STATE = np.linspace(-0.5, 0.5, 39).astype(np.float32)

ENTRY_MODULE = """
import numpy as np

class ValuePolicy:
    policy_id = "value-policy-1"

    def predict(self, state):
        from takeover.app.policy.server import PolicyOutput
        return PolicyOutput(np.zeros((3, 4), np.float32), {"value": np.array([float(state[0])])})

def make():
    return ValuePolicy()

def broken():
    raise RuntimeError("no GPU here")

def wrong():
    return 42

not_callable = 3
"""


@pytest.fixture
def entry_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "takeover_test_policies.py").write_text(ENTRY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "takeover_test_policies"


def _serve(config: ServerConfig, policy: object | None = None) -> Iterator[PolicyServer]:
    server = PolicyServer(config, policy)  # type: ignore[arg-type]
    server.bind()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.stop()
    thread.join(timeout=5)
    server.close()


def test_loader_takes_a_checkpoint_path(checkpoint: Path, policy: Policy) -> None:
    loaded = load_policy_from(checkpoint)
    assert loaded.policy_id == policy.policy_id
    assert not is_entry_point(str(checkpoint))
    with pytest.raises(PolicyLoadError, match="does not exist"):
        load_policy_from(checkpoint.with_name("missing.safetensors"))
    with pytest.raises(PolicyLoadError, match="empty policy spec"):
        load_policy_from("")


def test_loader_takes_an_entry_point(entry_module: str) -> None:
    policy = load_policy_from(f"{entry_module}:make")
    assert policy.policy_id == "value-policy-1"
    for spec, reason in [
        ("no_such_module_here:make", "cannot import"),
        (f"{entry_module}:absent", "no callable 'absent'"),
        (f"{entry_module}:not_callable", "no callable"),
        (f"{entry_module}:broken", "failed: RuntimeError: no GPU here"),
        (f"{entry_module}:wrong", "returned int"),
    ]:
        with pytest.raises(PolicyLoadError, match=reason):
            load_policy_from(spec)


def test_extras_and_open_loop_steps_reach_the_client(entry_module: str) -> None:
    config = ServerConfig(
        endpoint="tcp://127.0.0.1:*", poll_ms=20, checkpoint=f"{entry_module}:make", open_loop_steps=2
    )
    for server in _serve(config):
        with PolicyClient(server.endpoint, timeout_s=5.0) as client:
            chunk = client.infer(STATE, 0)
            health = client.health()
    assert chunk.actions.shape == (3, 4) and chunk.open_loop_steps == 2
    assert set(chunk.extras) == {"value"} and chunk.extras["value"].dtype == np.float32
    assert chunk.extras["value"][0] == pytest.approx(STATE[0])
    assert health.open_loop_steps == 2 and health.policy_id == "value-policy-1"
    assert health.horizon is None  # this policy does not declare its shape


class BadExtras:
    policy_id = "bad-extras-0"

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, state: np.ndarray) -> PolicyOutput:
        self.calls += 1
        value = np.array([np.nan]) if self.calls == 1 else np.array([0.5])
        return PolicyOutput(np.zeros((2, 4), np.float32), {"value": value})


def test_invalid_extras_answer_an_error_and_the_server_keeps_serving(serve: ServeFn) -> None:
    server = serve(BadExtras())
    with PolicyClient(server.endpoint, timeout_s=5.0) as client:
        with pytest.raises(PolicyRejectedError, match="invalid extras: extra 'value' contains NaN or Inf"):
            client.infer(STATE, 0)
        assert client.infer(STATE, 1).extras["value"][0] == 0.5


def test_health_reports_timing(served: PolicyServer) -> None:
    with PolicyClient(served.endpoint, timeout_s=5.0) as client:
        empty = client.health()
        for step in range(20):
            client.infer(STATE, step)
        health = client.health()
    assert empty.infer_ms_mean == 0.0 and empty.served == 0
    assert health.served == 20 and health.open_loop_steps == 0
    assert 0.0 < health.infer_ms_mean <= health.infer_ms_p99
    assert health.uptime_s > 0.0


def test_an_oversized_request_gets_a_readable_error(served: PolicyServer) -> None:
    with RawClient(served.endpoint) as raw:
        reply = raw.ask(b"\x00" * (2 * 1024 * 1024))
    assert reply["ok"] is False and "exceeds the server's limit" in reply["error"]


def test_curve_refuses_an_unauthenticated_client(tmp_path: Path, policy: Policy) -> None:
    for name in ("server", "trainer", "stranger"):
        curve.generate_keypair(tmp_path, name)
    config = ServerConfig(
        endpoint="tcp://127.0.0.1:*",
        poll_ms=20,
        curve_secret_key=str(tmp_path / "server.key_secret"),
        curve_allowed_clients=(str(tmp_path / "trainer.key"),),
    )

    def keys(name: str) -> curve.ClientKeys:
        return curve.ClientKeys.load(str(tmp_path / f"{name}.key_secret"), str(tmp_path / "server.key"))

    for server in _serve(config, policy):
        for who in (None, keys("stranger")):
            with (
                PolicyClient(server.endpoint, timeout_s=0.5, keys=who) as client,
                pytest.raises(PolicyUnavailableError, match="no policy server answered"),
            ):
                client.health()
        with PolicyClient(server.endpoint, timeout_s=5.0, keys=keys("trainer")) as client:
            assert client.infer(STATE, 0).policy_id == policy.policy_id
        assert server.served == 1
