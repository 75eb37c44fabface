"""Deploying a checkpoint to a running policy server: the next request is answered by the new
policy and the id changes; a checkpoint that does not load leaves the old one serving."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from takeover.app.policy.checkpoint import load_policy, save_checkpoint
from takeover.app.policy.client import PolicyClient, PolicyRejectedError
from takeover.app.policy.model import Policy
from takeover.app.policy.remote import RemotePolicy
from takeover.app.policy.server import PolicyServer
from takeover.app.policy.testing import SMALL_CONFIG, random_model

from .test_policy_cli import run

STATE = np.linspace(-0.3, 0.3, 39, dtype=np.float32)


@pytest.fixture
def second(tmp_path: Path) -> Path:
    path = tmp_path / "second.safetensors"
    save_checkpoint(random_model(seed=1, config=replace(SMALL_CONFIG, horizon=4)), path, {"round": 1})
    return path


def test_the_next_request_is_answered_by_the_deployed_policy(
    served: PolicyServer, policy: Policy, second: Path
) -> None:
    new = load_policy(second)
    assert new.policy_id != policy.policy_id
    with PolicyClient(served.endpoint) as client:
        before = client.infer(STATE, 0)
        assert before.policy_id == client.policy_id == policy.policy_id
        np.testing.assert_array_equal(before.actions, policy.predict(STATE))

        reply = client.deploy(str(second))
        assert (reply.policy_id, reply.previous_policy_id) == (new.policy_id, policy.policy_id)
        assert client.policy_id == new.policy_id

        after = client.infer(STATE, 1)
        assert after.policy_id == new.policy_id
        assert after.actions.shape == (4, 4)  # the new checkpoint's horizon
        np.testing.assert_array_equal(after.actions, new.predict(STATE))
        health = client.health()
    assert (health.policy_id, health.horizon) == (new.policy_id, 4)
    assert served.deployed == 1


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x00" * 64, "not a safetensors file"),
        (None, "does not exist"),
    ],
)
def test_a_broken_checkpoint_leaves_the_old_policy_serving(
    served: PolicyServer, policy: Policy, tmp_path: Path, content: bytes | None, expected: str
) -> None:
    bad = tmp_path / "broken.safetensors"
    if content is not None:
        bad.write_bytes(content)
    with PolicyClient(served.endpoint) as client:
        with pytest.raises(PolicyRejectedError) as info:
            client.deploy(str(bad))
        text = str(info.value)
        assert "\n" not in text and expected in text, text
        assert f"still serving {policy.policy_id}" in text
        chunk = client.infer(STATE, 0)
    assert chunk.policy_id == policy.policy_id
    np.testing.assert_array_equal(chunk.actions, policy.predict(STATE))
    assert served.deployed == 0


def test_deploy_refuses_code_and_checkpoints_for_another_station(
    served: PolicyServer, policy: Policy, tmp_path: Path
) -> None:
    other = tmp_path / "other.safetensors"
    save_checkpoint(random_model(config=replace(SMALL_CONFIG, action_dim=7)), other)
    with PolicyClient(served.endpoint) as client:
        with pytest.raises(PolicyRejectedError, match="a deploy never runs code"):
            client.deploy("os:getcwd")
        with pytest.raises(PolicyRejectedError, match="gives actions of 7, the serving policy 39 and 4"):
            client.deploy(str(other))
        assert client.health().policy_id == policy.policy_id


def test_every_chunk_comes_whole_from_the_policy_it_names(
    served: PolicyServer, policy: Policy, second: Path
) -> None:
    """Requests in flight while a deploy happens: each answer is one policy's, never a mix."""
    policies = {policy.policy_id: policy, load_policy(second).policy_id: load_policy(second)}
    seen: list[str] = []
    stop = threading.Event()
    failures: list[str] = []

    def ask() -> None:
        with PolicyClient(served.endpoint) as client:
            step = 0
            while not stop.is_set() or step < 5:
                chunk = client.infer(STATE, step)
                if not np.array_equal(chunk.actions, policies[chunk.policy_id].predict(STATE)):
                    failures.append(chunk.policy_id)
                seen.append(chunk.policy_id)
                step += 1

    thread = threading.Thread(target=ask)
    thread.start()
    with PolicyClient(served.endpoint) as deployer:
        while len(seen) < 20:
            threading.Event().wait(0.005)
        deployer.deploy(str(second))
        n = len(seen)
        while len(seen) < n + 20:
            threading.Event().wait(0.005)
    stop.set()
    thread.join(timeout=10)
    assert not failures
    switch = seen.index(next(i for i in policies if i != policy.policy_id))
    assert set(seen[:switch]) == {policy.policy_id} and set(seen[switch:]) != {policy.policy_id}
    assert seen[-1] != policy.policy_id and switch >= 20


def test_remote_policy_takes_the_new_id(
    served: PolicyServer, policy: Policy, checkpoint: Path, second: Path
) -> None:
    remote = RemotePolicy(served.endpoint, timeout_s=2.0)
    remote.connect()
    try:
        assert remote.policy_id == policy.policy_id
        reply = remote.deploy(str(second), timeout_s=10.0)
        assert remote.policy_id == reply.policy_id == load_policy(second).policy_id
        # Someone deploys the first one again behind its back: the next chunk brings the id.
        with PolicyClient(served.endpoint) as other:
            other.deploy(str(checkpoint))
        assert remote.infer(STATE, 0).step == 0
        assert remote.policy_id == policy.policy_id
    finally:
        remote.close()


def test_cli_deploy_to_a_standalone_server(
    served: PolicyServer, policy: Policy, second: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new_id = load_policy(second).policy_id
    assert run(["policy", "deploy", str(second), "--endpoint", served.endpoint]) == 0
    assert capsys.readouterr().out.strip() == (
        f"policy server at {served.endpoint} now serves {new_id} (was {policy.policy_id})"
    )
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"junk")
    assert run(["policy", "deploy", str(bad), "--endpoint", served.endpoint]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and f"still serving {new_id}" in lines[0]
