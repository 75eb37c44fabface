"""Helpers for tests and benchmarks of the policy: random models and synthetic step items."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from takeover.app.policy.model import ChunkMLP, NormStats, PolicyConfig

SMALL_CONFIG = PolicyConfig(hidden=(32, 32), horizon=6)


def random_model(seed: int = 0, config: PolicyConfig = SMALL_CONFIG) -> ChunkMLP:
    """A model with seeded random weights and non-trivial normalisation statistics."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n = len(config.features)
    stats = NormStats(
        rng.normal(size=n).astype(np.float32),
        rng.uniform(0.5, 2.0, size=n).astype(np.float32),
        rng.normal(scale=0.1, size=config.action_dim).astype(np.float32),
        rng.uniform(0.2, 0.5, size=config.action_dim).astype(np.float32),
    )
    return ChunkMLP(config, stats)


def synthetic_items(
    episodes: int = 8, steps: int = 40, seed: int = 0, state_dim: int = 39, as_tensors: bool = True
) -> list[dict[str, Any]]:
    """Step items in the format of ``takeover.storage.pull``: a point moving toward a goal.

    The action is a clipped proportional step from the hand (state[0:3]) toward the goal
    (state[36:39]) plus a gripper command, so it is a learnable function of the state.
    Items come back shuffled across episodes, as a sampler might deliver them.
    """
    rng = np.random.default_rng(seed)
    items: list[dict[str, Any]] = []
    for ep in range(episodes):
        state = np.zeros(state_dim, np.float32)
        state[0:3] = rng.uniform(-0.2, 0.2, 3)
        state[36:39] = rng.uniform(-0.2, 0.2, 3)
        for step in range(steps):
            delta = state[36:39] - state[0:3]
            action = np.empty(4, np.float32)
            action[:3] = np.clip(10.0 * delta, -1.0, 1.0)
            action[3] = 1.0 if np.linalg.norm(delta) < 0.05 else -1.0
            source = 1 if step % 10 < 7 else 0
            row = {
                "state": state.copy(),
                "action": action,
                "control_source": source,
                "episode_index": ep,
                "step_index": step,
            }
            if as_tensors:
                row = {
                    k: torch.from_numpy(v)
                    if isinstance(v, np.ndarray)
                    else torch.tensor(v, dtype=torch.int64)
                    for k, v in row.items()
                }
            items.append(row)
            state[0:3] += 0.01 * action[:3]
            state[3] = action[3]
    order = rng.permutation(len(items))
    return [items[i] for i in order]
