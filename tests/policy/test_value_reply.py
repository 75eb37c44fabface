"""The value model's estimate: sent with each chunk by the server, recorded as ``policy.value``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from takeover.annotation.training_labels import stream_per_step
from takeover.app.control.loop import ControlLoop, LoopConfig
from takeover.app.control.pacing import FakeClock
from takeover.app.control.safety import SafetyConfig
from takeover.app.net.testing import RawClient
from takeover.app.net.wire import encode
from takeover.app.policy.checkpoint import load_policy, save_checkpoint
from takeover.app.policy.client import PolicyClient
from takeover.app.policy.model import ChunkMLP, Policy, PolicyConfig
from takeover.app.policy.protocol import VALUE_EXTRA
from takeover.app.policy.remote import RemotePolicy
from takeover.app.policy.server import PolicyServer
from takeover.app.policy.testing import random_model
from takeover.app.policy.value import ValueConfig, ValueMLP
from takeover.recorder.recorder import EpisodeRecorder
from takeover.storage.store import Store

from ..control.test_loop import Tape
from ..control.test_prefetch import CountingStation
from .conftest import ServeFn

STATE = np.linspace(-0.5, 0.5, 39).astype(np.float32)


def _value_model(config: ValueConfig | None = None) -> ValueMLP:
    torch.manual_seed(1)
    return ValueMLP(config or ValueConfig(hidden=(16,), bins=11))


def test_a_checkpoint_with_a_value_model_sends_its_estimate_with_each_chunk(
    serve: ServeFn, tmp_path: Path
) -> None:
    path = tmp_path / "recap.safetensors"
    save_checkpoint(random_model(), path, {"note": "random weights"}, value=_value_model())
    policy = load_policy(path)
    assert policy.value_model is not None
    served = serve(policy)
    with PolicyClient(served.endpoint, timeout_s=5.0) as client:
        chunk = client.infer(STATE, step=4)
    estimate = chunk.extras[VALUE_EXTRA]
    assert estimate.dtype == np.float32 and estimate.shape == (1,)
    assert float(estimate[0]) == pytest.approx(policy.value(STATE), abs=1e-6)
    assert -1.0 <= float(estimate[0]) <= 0.0  # the mean of a distribution over the bins' range
    np.testing.assert_array_equal(chunk.actions, policy.predict(STATE))


def test_without_a_value_model_the_reply_has_no_estimate(served: PolicyServer) -> None:
    # As before the value model existed: an old client sees the same reply.
    with RawClient(served.endpoint) as raw:
        reply = raw.ask(encode({"type": "infer", "state": STATE, "step": 0}))
    assert reply["ok"] is True and reply["type"] == "action_chunk"
    assert reply["extras"] == {}


def test_the_loop_records_the_estimate_of_each_chunk_as_policy_value(serve: ServeFn, tmp_path: Path) -> None:
    config = PolicyConfig(state_dim=3, features=(0, 1, 2), hidden=(16,), horizon=4)
    torch.manual_seed(0)
    value = _value_model(ValueConfig(state_dim=3, features=(0, 1, 2), hidden=(16,), bins=11))
    policy = Policy(ChunkMLP(config), "valued-point", value_model=value)
    served = serve(policy)
    remote = RemotePolicy(served.endpoint, timeout_s=5.0)
    remote.connect()
    clock = FakeClock()
    tape = Tape()
    safety = SafetyConfig(policy_timeout_ms=2000.0, ee_delta_scale=1.0, max_step_m=2.0)
    loop_config = LoopConfig(rate_hz=50.0, max_steps=12, safety=safety)
    with Store.create(tmp_path / "store") as store:
        recorder = EpisodeRecorder(store)
        loop = ControlLoop(CountingStation(clock), remote, [], [recorder, tape], loop_config, clock)
        try:
            result = loop.run_episode(episode_id="ep-value")
        finally:
            loop.close()
            remote.close()
        episode = store.read_episode(result.episode_id)
    chunk_steps = [s for s in tape.steps if s.extras]
    assert len(chunk_steps) == 3  # 12 steps, a chunk of 4 each time
    stream = episode.streams["policy.value"]
    np.testing.assert_array_equal(stream.timestamps, [s.t for s in chunk_steps])
    want = [policy.value(s.state) for s in chunk_steps]
    np.testing.assert_allclose(np.asarray(stream.values).reshape(-1), want, atol=1e-6)
    # The stream serves the derived training labels' value_source = "policy.value".
    per_step = stream_per_step(stream, episode.timestamps, "policy.value")
    assert per_step.shape == (len(tape.steps),)
    np.testing.assert_allclose(per_step[4:8], want[1], atol=1e-6)
