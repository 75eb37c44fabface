"""Behaviour cloning on a synthetic dataset in the item format of ``takeover.storage.pull``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from takeover.app.policy.checkpoint import load_policy, save_checkpoint
from takeover.app.policy.model import PolicyConfig
from takeover.app.policy.testing import synthetic_items
from takeover.app.policy.train import (
    HOLD_SOURCE,
    HUMAN_SOURCE,
    POLICY_SOURCE,
    TrainConfig,
    build_chunks,
    train,
)

SMALL = PolicyConfig(hidden=(64, 64), horizon=4)


def _item(ep: int, step: int, action: float, source: int = HUMAN_SOURCE) -> dict[str, object]:
    state = np.zeros(39, np.float32)
    state[0] = ep * 100 + step
    return {
        "state": torch.from_numpy(state),
        "action": torch.full((4,), action),
        "control_source": torch.tensor(source),
        "episode_index": torch.tensor(ep),
        "step_index": torch.tensor(step),
    }


def test_chunks_follow_episode_and_step_order_and_mask_the_end() -> None:
    items = [_item(1, s, 10 + s) for s in (2, 0, 1)] + [_item(0, s, s) for s in (4, 3, 2, 1, 0)]
    data = build_chunks(reversed(items), horizon=3)
    assert data.episodes == 2 and data.states.shape == (8, 39) and data.targets.shape == (8, 3, 4)
    assert data.states[:, 0].tolist() == [0, 1, 2, 3, 4, 100, 101, 102]
    assert data.targets[0, :, 0].tolist() == [0, 1, 2]
    assert data.targets[3, :, 0].tolist() == [3, 4, 0] and data.mask[3].tolist() == [True, True, False]
    assert data.targets[5, :, 0].tolist() == [10, 11, 12] and data.mask[5].all()
    assert data.mask[7].tolist() == [True, False, False]


def test_sources_select_samples_and_mask_targets() -> None:
    sources = [HUMAN_SOURCE, HUMAN_SOURCE, HOLD_SOURCE, POLICY_SOURCE, HUMAN_SOURCE]
    items = [_item(0, s, s, src) for s, src in enumerate(sources)]
    data = build_chunks(items, horizon=3, sources=(HUMAN_SOURCE,))
    assert data.states[:, 0].tolist() == [0, 1, 4]  # only human steps start a sample
    assert data.mask[0].tolist() == [True, True, False]  # the hold step is not a target
    assert data.mask[1].tolist() == [True, False, False]
    with pytest.raises(ValueError, match="no steps"):
        build_chunks(items, horizon=3, sources=(7,))


def test_bad_datasets_are_refused() -> None:
    with pytest.raises(ValueError, match="no steps"):
        build_chunks([], horizon=2)
    with pytest.raises(ValueError, match="duplicate step"):
        build_chunks([_item(0, 0, 0), _item(0, 0, 1)], horizon=2)
    broken = _item(0, 0, 0)
    del broken["action"]
    with pytest.raises(ValueError, match="no field 'action'"):
        build_chunks([broken], horizon=2)
    nan = _item(0, 0, float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        build_chunks([nan], horizon=2)


def test_training_reduces_the_loss_and_fits_the_data(tmp_path: Path) -> None:
    items = synthetic_items(episodes=8, steps=40, seed=0)
    cfg = TrainConfig(epochs=60, batch_size=64, seed=0, model=SMALL)
    result = train(items, cfg)
    assert result.samples == len(items) and result.episodes == 8
    assert result.losses[-1] < 0.35 * result.losses[0]
    path = tmp_path / "bc.safetensors"
    save_checkpoint(result.model, path, result.record(cfg, tag="synthetic"))
    policy = load_policy(path)
    assert policy.metadata["tag"] == "synthetic" and policy.metadata["epochs"] == 60
    # the first action of each predicted chunk is close to the executed one
    states = np.stack([np.asarray(it["state"]) for it in items])
    actions = np.stack([np.asarray(it["action"]) for it in items])
    predicted = np.stack([policy.predict(s)[0] for s in states])
    error = np.abs(predicted - actions).mean()
    baseline = np.abs(actions - actions.mean(axis=0)).mean()
    assert error < 0.3 * baseline


def test_training_is_deterministic_for_a_seed() -> None:
    items = synthetic_items(episodes=4, steps=20, seed=1, as_tensors=False)
    cfg = TrainConfig(epochs=5, batch_size=16, seed=3, model=SMALL)
    a, b = train(items, cfg), train(items, cfg)
    assert a.losses == b.losses
    for name, tensor in a.model.state_dict().items():
        assert torch.equal(tensor, b.model.state_dict()[name]), name
    c = train(items, TrainConfig(epochs=5, batch_size=16, seed=4, model=SMALL))
    assert c.losses != a.losses


def test_model_shape_must_match_the_data() -> None:
    items = synthetic_items(episodes=1, steps=5)
    wide = PolicyConfig(state_dim=45, features=(0, 1, 2))
    with pytest.raises(ValueError, match="model expects 45"):
        train(items, TrainConfig(epochs=1, model=wide))
