"""The policy network: a small MLP from task-state features to a chunk of future actions.

Input: the features of Meta-World's 39-D observation that describe the current scene (hand
position, gripper opening, puck position and orientation, goal position; the previous-frame copy
and the unused second-object slots are left out). Output: ``horizon`` future actions of
``action_dim`` each. Inputs and outputs are normalised with statistics computed from the training
data and stored with the weights, so a checkpoint is self-contained.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from takeover.app.policy.value import ValueMLP

# Meta-World observation layout: [0:3] hand, [3] gripper, [4:7] puck pos, [7:11] puck quat,
# [11:18] second object (unused by pick-place), [18:36] previous frame, [36:39] goal.
DEFAULT_FEATURES: tuple[int, ...] = (*range(0, 11), 36, 37, 38)
CONDITION_INPUTS = 2
"""Inputs of the improvement indicator of a conditioned policy: ``(indicator, known)``."""
MIN_STD = 1e-2
"""Floor of a normalisation standard deviation, so near-constant inputs are not blown up."""


def use_one_thread() -> None:
    """Serve on one torch thread: for a small MLP it is fastest and leaves the cores to the loop."""
    torch.set_num_threads(1)


@dataclass(frozen=True)
class PolicyConfig:
    name: str = "mlp-chunk"
    state_dim: int = 39
    action_dim: int = 4
    horizon: int = 8
    """Actions per predicted chunk."""
    features: tuple[int, ...] = DEFAULT_FEATURES
    """Indices of the state vector fed to the network."""
    hidden: tuple[int, ...] = (256, 256)
    conditioned: bool = False
    """The network also takes the improvement indicator (RECAP, docs/learning.md): two inputs,
    ``(indicator, known)``; ``(0, 0)`` is the unconditioned input."""
    guidance: float = 1.0
    """Run-time weight ``a`` of a conditioned policy: ``a * pi(o, I=1) + (1 - a) * pi(o, none)``
    in normalised action units (1: conditioned on improvement only)."""

    def __post_init__(self) -> None:
        if self.state_dim < 1 or self.action_dim < 1:
            raise ValueError("state_dim and action_dim must be positive")
        if not 1 <= self.horizon <= 256:
            raise ValueError(f"horizon must be in 1..256, got {self.horizon}")
        if not self.features or any(not 0 <= i < self.state_dim for i in self.features):
            raise ValueError(f"features must be indices into a state of {self.state_dim}")
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden layer sizes must be positive, got {self.hidden}")
        if not (math.isfinite(self.guidance) and 0.0 <= self.guidance <= 10.0):
            raise ValueError(f"guidance must be in 0..10, got {self.guidance}")
        if self.guidance != 1.0 and not self.conditioned:
            raise ValueError("guidance applies only to a policy conditioned on the improvement indicator")

    def to_json(self) -> str:
        raw = asdict(self)
        if not self.conditioned:  # as before conditioning existed: the same ids for the same weights
            del raw["conditioned"], raw["guidance"]
        return json.dumps(raw, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PolicyConfig:
        raw: dict[str, Any] = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("policy config must be a JSON object")
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown policy config field(s): {sorted(unknown)}")
        for key in ("features", "hidden"):
            if key in raw:
                raw[key] = tuple(int(v) for v in raw[key])
        return cls(**raw)


@dataclass(frozen=True)
class NormStats:
    """Per-dimension mean and standard deviation of the network's inputs and outputs."""

    state_mean: np.ndarray
    state_std: np.ndarray
    action_mean: np.ndarray
    action_std: np.ndarray

    @classmethod
    def identity(cls, config: PolicyConfig) -> NormStats:
        n, a = len(config.features), config.action_dim
        return cls(
            np.zeros(n, np.float32), np.ones(n, np.float32), np.zeros(a, np.float32), np.ones(a, np.float32)
        )

    @classmethod
    def fit(cls, features: np.ndarray, actions: np.ndarray) -> NormStats:
        """Statistics of (N, F) features and (M, A) actions (std floored at :data:`MIN_STD`)."""
        return cls(
            features.mean(axis=0).astype(np.float32),
            np.maximum(features.std(axis=0), MIN_STD).astype(np.float32),
            actions.mean(axis=0).astype(np.float32),
            np.maximum(actions.std(axis=0), MIN_STD).astype(np.float32),
        )


class ChunkMLP(nn.Module):
    """MLP policy; all normalisation lives in buffers so ``state_dict`` is the whole checkpoint."""

    state_mean: torch.Tensor
    state_std: torch.Tensor
    action_mean: torch.Tensor
    action_std: torch.Tensor
    feature_index: torch.Tensor

    def __init__(self, config: PolicyConfig, stats: NormStats | None = None) -> None:
        super().__init__()
        self.config = config
        stats = stats or NormStats.identity(config)
        n_in = len(config.features) + (CONDITION_INPUTS if config.conditioned else 0)
        layers: list[nn.Module] = []
        width = n_in
        for h in config.hidden:
            layers += [nn.Linear(width, h), nn.GELU()]
            width = h
        layers.append(nn.Linear(width, config.horizon * config.action_dim))
        self.net = nn.Sequential(*layers)
        self.register_buffer("feature_index", torch.tensor(config.features, dtype=torch.int64))
        self.register_buffer("state_mean", torch.as_tensor(stats.state_mean, dtype=torch.float32))
        self.register_buffer("state_std", torch.as_tensor(stats.state_std, dtype=torch.float32))
        self.register_buffer("action_mean", torch.as_tensor(stats.action_mean, dtype=torch.float32))
        self.register_buffer("action_std", torch.as_tensor(stats.action_std, dtype=torch.float32))
        self._check_shapes()

    def _check_shapes(self) -> None:
        n, a = len(self.config.features), self.config.action_dim
        for name, size in (("state_mean", n), ("state_std", n), ("action_mean", a), ("action_std", a)):
            t = getattr(self, name)
            if tuple(t.shape) != (size,):
                raise ValueError(f"normalisation {name} has shape {tuple(t.shape)}, expected ({size},)")

    def select(self, state: torch.Tensor) -> torch.Tensor:
        """(B, state_dim) raw states -> (B, F) network features (not normalised)."""
        return state.index_select(-1, self.feature_index)

    def forward_normalized(self, state: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """(B, state_dim) raw states -> (B, H, A) actions in normalised units (for training).

        ``condition``: (B, 2) ``(indicator, known)`` rows for a conditioned model (required), None
        for one that is not."""
        x = (self.select(state) - self.state_mean) / self.state_std
        if self.config.conditioned:
            if condition is None or tuple(condition.shape) != (x.shape[0], CONDITION_INPUTS):
                raise ValueError(f"a conditioned policy needs a ({x.shape[0]}, {CONDITION_INPUTS}) condition")
            x = torch.cat([x, condition.to(x.dtype)], dim=-1)
        elif condition is not None:
            raise ValueError("this policy is not conditioned on the improvement indicator")
        return self.net(x).view(-1, self.config.horizon, self.config.action_dim)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        """(B, state_dim) raw states -> (B, H, A) actions in the station's units, clipped to [-1, 1].

        A conditioned policy runs conditioned on improvement, blended with its unconditioned output
        by :attr:`PolicyConfig.guidance` (classifier-free guidance)."""
        if self.config.conditioned:
            n = state.shape[0]
            improved = self.forward_normalized(state, state.new_tensor([[1.0, 1.0]]).expand(n, 2))
            a = self.config.guidance
            if a == 1.0:
                y = improved
            else:
                free = self.forward_normalized(state, state.new_zeros((n, CONDITION_INPUTS)))
                y = a * improved + (1.0 - a) * free
        else:
            y = self.forward_normalized(state)
        return (y * self.action_std + self.action_mean).clamp(-1.0, 1.0)

    def normalize_actions(self, actions: torch.Tensor) -> torch.Tensor:
        return (actions - self.action_mean) / self.action_std


class Policy:
    """A loaded policy ready for inference: ``predict(state) -> (H, A)`` float32 actions."""

    def __init__(
        self,
        model: ChunkMLP,
        policy_id: str,
        metadata: dict[str, Any] | None = None,
        value_model: ValueMLP | None = None,
    ) -> None:
        self.model = model.eval()
        self.policy_id = policy_id
        self.metadata = dict(metadata or {})
        self.value_model = value_model.eval() if value_model is not None else None

    @property
    def config(self) -> PolicyConfig:
        return self.model.config

    @property
    def horizon(self) -> int:
        return self.model.config.horizon

    def predict(self, state: np.ndarray) -> np.ndarray:
        """One (state_dim,) state -> (horizon, action_dim) float32 actions in [-1, 1] (a policy
        conditioned on the improvement indicator runs conditioned on improvement)."""
        with torch.inference_mode():
            out = self.model(self._tensor(state))
        return np.ascontiguousarray(out[0].numpy(), dtype=np.float32)

    def value(self, state: np.ndarray) -> float:
        """The value model's estimate for one (state_dim,) state (a checkpoint with a value model,
        e.g. of ``recap``; ValueError otherwise)."""
        if self.value_model is None:
            raise ValueError(f"policy {self.policy_id} has no value model")
        with torch.inference_mode():
            return float(self.value_model(self._tensor(state))[0])

    def _tensor(self, state: np.ndarray) -> torch.Tensor:
        s = np.asarray(state)
        if s.dtype.kind not in "biuf":
            raise ValueError(f"state must be numeric, got dtype {s.dtype}")
        if s.shape != (self.config.state_dim,):
            raise ValueError(f"state must have shape ({self.config.state_dim},), got {s.shape}")
        if not np.all(np.isfinite(s)):
            raise ValueError("state contains NaN or Inf")
        return torch.from_numpy(s.astype(np.float32, copy=True)).unsqueeze(0)
