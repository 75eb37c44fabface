"""The training methods on a real store: a tiny version committed with derived training labels,
pulled, trained a few steps with each method, saved, and loaded by the server's loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from takeover.annotation.training_params import TrainingLabelParams
from takeover.annotation.training_store import TrainingLabelPins
from takeover.app.policy.checkpoint import save_checkpoint
from takeover.app.policy.client import PolicyClient
from takeover.app.policy.loader import load_policy_from
from takeover.app.policy.methods import RecapConfig, pull_for, train_method
from takeover.app.policy.model import Policy, PolicyConfig
from takeover.app.policy.train import TrainConfig
from takeover.app.policy.value import ValueConfig, ValueMLP
from takeover.storage.store import Store
from takeover.storage.testing import make_episode

from .conftest import ServeFn

PARAMS = TrainingLabelParams(pre_window=2, pre_window_unit="steps")
SMALL = PolicyConfig(hidden=(32, 32), horizon=4)
CONFIG = TrainConfig(epochs=3, batch_size=16, lr=3e-3, model=SMALL)
# (id, steps, outcome, takeover step): successes count every step, the others only human ones.
EPISODES = [("a-ok", 12, "success", None), ("b-fail", 10, "failure", 4), ("c-near", 9, "near_success", 3)]
EPISODES += [("d-ok", 8, "success", 5)]


def _make(store: Store) -> None:
    for seed, (name, steps, outcome, takeover) in enumerate(EPISODES):
        ep = make_episode(
            name,
            steps,
            seed=seed,
            state_dim=39,
            action_dim=4,
            outcome=outcome,
            success=outcome == "success",
            takeover_at=takeover,
        )
        store.add_episode(ep)


@pytest.fixture
def store_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TAKEOVER_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "store"
    with Store.create(root) as store:
        _make(store)
        store.commit("plain")
        store.commit("pinned", derived=TrainingLabelPins(store, PARAMS))
    return root


def _load(path: Path) -> Policy:
    policy = load_policy_from(str(path))
    assert isinstance(policy, Policy)
    return policy


def test_bc_trains_on_every_policy_and_human_step(store_root: Path, tmp_path: Path) -> None:
    pulled = pull_for("bc", "plain", str(store_root))
    assert pulled.labels is None and len(pulled.items) == 39
    result = train_method("bc", pulled.items, CONFIG)
    assert result.policy.samples == 39 and result.value is None
    path = tmp_path / "bc.safetensors"
    save_checkpoint(result.policy.model, path, {**result.record, **pulled.record("plain")})
    policy = _load(path)
    assert policy.predict(np.zeros(39, np.float32)).shape == (4, 4)
    assert policy.metadata["method"] == "bc" and policy.metadata["tag"] == "plain"
    assert policy.metadata["version"] == pulled.version and policy.metadata["epochs"] == 3
    with pytest.raises(ValueError, match="no value model"):
        policy.value(np.zeros(39, np.float32))


def test_filtered_bc_learns_only_from_successes_and_human_corrections(store_root: Path) -> None:
    pulled = pull_for("filtered-bc", "pinned", str(store_root))
    result = train_method("filtered-bc", pulled.items, CONFIG)
    # a-ok 12 + d-ok 8 (whole successes) + b-fail 6 + c-near 6 human steps
    assert result.policy.samples == 12 + 8 + 6 + 6 == 32
    assert result.record["method"] == "filtered-bc" and result.policy.episodes == 4
    labels = pulled.labels
    assert labels is not None and labels["params_digest"] == PARAMS.digest()
    assert labels["params"] == PARAMS.to_dict() and labels["batch_episodes"] == 4


def test_recap_value_model_indicator_and_conditioned_policy(store_root: Path, tmp_path: Path) -> None:
    pulled = pull_for("recap", "pinned", str(store_root))
    recap = RecapConfig(value_epochs=40, lookahead=2, positive_fraction=0.5, guidance=1.5)
    result = train_method("recap", pulled.items, CONFIG, recap)
    record = result.record
    value = record["value_model"]
    assert value["final_loss"] < 0.8 * value["initial_loss"]
    assert value["bins"] == 51 and result.value is not None
    targets = np.array([float(it["value_target"]) for it in pulled.items])
    assert value["v_min"] == pytest.approx(targets.min()) and value["v_max"] == pytest.approx(targets.max())
    indicator = record["indicator"]
    human = sum(int(it["control_class"]) == 1 for it in pulled.items)
    assert indicator["non_human_steps"] == 39 - human and indicator["lookahead"] == 2
    assert abs(indicator["positive_fraction"] - 0.5) <= 0.1
    # every human step is a positive sample; the rest as the threshold says
    assert record["positive_samples"] >= human
    assert record["indicator_dropout"] == 0.3 and record["guidance"] == 1.5

    path = tmp_path / "recap.safetensors"
    save_checkpoint(result.policy.model, path, {**record, **pulled.record("pinned")}, result.value)
    policy = _load(path)
    state = np.asarray(pulled.items[0]["state"], np.float32)
    actions = policy.predict(state)
    assert actions.shape == (4, 4) and np.all(np.abs(actions) <= 1.0)
    assert policy.config.conditioned and policy.config.guidance == 1.5
    estimate = policy.value(state)
    assert value["v_min"] <= estimate <= value["v_max"]
    with torch.inference_mode():
        direct = float(result.value(torch.from_numpy(state)[None])[0])
    assert estimate == pytest.approx(direct)
    meta = policy.metadata
    assert meta["method"] == "recap" and meta["tag"] == "pinned" and meta["version"] == pulled.version
    assert meta["training_labels"]["params_digest"] == PARAMS.digest()
    assert meta["indicator"]["source"] == "the checkpoint's own value model"


def test_a_recap_checkpoint_is_served_conditioned_on_improvement(
    store_root: Path, tmp_path: Path, serve: ServeFn
) -> None:
    pulled = pull_for("recap", "pinned", str(store_root))
    result = train_method("recap", pulled.items, CONFIG, RecapConfig(value_epochs=2))
    path = tmp_path / "recap.safetensors"
    policy_id = save_checkpoint(result.policy.model, path, result.record, result.value)
    policy = _load(path)
    state = np.linspace(-0.5, 0.5, 39).astype(np.float32)
    with PolicyClient(serve(policy).endpoint, timeout_s=5.0) as client:
        chunk = client.infer(state, step=3)
    assert chunk.policy_id == policy_id and chunk.actions.shape == (4, 4)
    np.testing.assert_array_equal(chunk.actions, policy.predict(state))
    with torch.inference_mode():
        model = result.policy.model
        s = torch.from_numpy(state)[None]
        improved = model.forward_normalized(s, torch.tensor([[1.0, 1.0]]))[0] * model.action_std
    np.testing.assert_allclose(chunk.actions, (improved + model.action_mean).clamp(-1, 1).numpy(), atol=1e-6)


def test_guidance_blends_the_conditioned_and_unconditioned_outputs() -> None:
    torch.manual_seed(0)
    base = PolicyConfig(hidden=(16,), horizon=2, conditioned=True)
    states = torch.randn(3, 39)
    from takeover.app.policy.model import ChunkMLP

    model = ChunkMLP(base)
    improved = model.forward_normalized(states, torch.tensor([[1.0, 1.0]]).expand(3, 2))
    free = model.forward_normalized(states, torch.zeros(3, 2))
    blended = ChunkMLP(PolicyConfig(hidden=(16,), horizon=2, conditioned=True, guidance=2.0))
    blended.load_state_dict(model.state_dict())
    want = (2.0 * improved - free) * model.action_std + model.action_mean
    torch.testing.assert_close(blended(states), want.clamp(-1.0, 1.0))
    torch.testing.assert_close(model(states), (improved * model.action_std + model.action_mean).clamp(-1, 1))
    with pytest.raises(ValueError, match="guidance applies only"):
        PolicyConfig(guidance=0.5)


def test_recap_needs_pinned_training_labels(store_root: Path) -> None:
    with pytest.raises(ValueError, match="pins no training labels"):
        pull_for("recap", "plain", str(store_root))


def test_two_hot_targets_have_the_value_as_their_mean() -> None:
    model = ValueMLP(ValueConfig(bins=11, v_min=-2.0, v_max=0.0))
    values = torch.tensor([-2.0, -1.55, -0.2, 0.0, 0.7])
    dist = model.two_hot(values)
    torch.testing.assert_close(dist.sum(dim=-1), torch.ones(5))
    torch.testing.assert_close(dist @ model.support, values.clamp(-2.0, 0.0))
    assert int((dist > 0).sum()) <= 10


def _run(argv: list[str]) -> int:
    import argparse

    from takeover.app.cli import policy as policy_cli

    parser = argparse.ArgumentParser(prog="takeover")
    policy_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_the_train_command_runs_recap_and_refuses_a_version_without_labels(
    store_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "recap.safetensors"
    argv = ["policy", "train", "--method", "recap", "--out", str(out), "--store", str(store_root)]
    argv += ["--epochs", "2", "--value-epochs", "3", "--guidance", "1.2"]
    assert _run([*argv, "--tag", "pinned"]) == 0
    printed = capsys.readouterr().out
    assert "(recap) on 39 steps from 4 episodes" in printed and "value model loss" in printed
    policy = _load(out)
    assert policy.policy_id in printed and policy.metadata["value_model"]["epochs"] == 3
    assert policy.config.guidance == 1.2 and np.isfinite(policy.value(np.zeros(39, np.float32)))
    other = tmp_path / "none.safetensors"
    argv[argv.index(str(out))] = str(other)
    assert _run([*argv, "--tag", "plain"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "pins no training labels" in lines[0]
    assert "--derived training_labels" in lines[0]
    assert not other.exists()
