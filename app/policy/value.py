"""The value model of RECAP: a distribution over discretised values of a state.

The network maps the same state features as the policy to logits over ``bins`` values evenly
spaced over ``[v_min, v_max]`` (the range of the training targets). A target ``v`` is the
"two-hot" distribution on the two bins around it (weights by distance, so its mean is ``v``), and
the loss is the cross-entropy between it and the predicted distribution (pi*0.6 trains its value
function as such a distribution). The estimate is the predicted distribution's mean.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from takeover.app.policy.model import DEFAULT_FEATURES, MIN_STD


@dataclass(frozen=True)
class ValueConfig:
    state_dim: int = 39
    features: tuple[int, ...] = DEFAULT_FEATURES
    hidden: tuple[int, ...] = (256, 256)
    bins: int = 51
    """Discrete values of the predicted distribution."""
    v_min: float = -1.0
    v_max: float = 0.0
    """The range the bins span (the training targets' range)."""

    def __post_init__(self) -> None:
        if self.state_dim < 1 or not self.features or any(not 0 <= i < self.state_dim for i in self.features):
            raise ValueError(f"value features must be indices into a state of {self.state_dim}")
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden layer sizes must be positive, got {self.hidden}")
        if not 2 <= self.bins <= 1024:
            raise ValueError(f"bins must be in 2..1024, got {self.bins}")
        if not (math.isfinite(self.v_min) and math.isfinite(self.v_max) and self.v_min < self.v_max):
            raise ValueError(f"the value range must be finite and not empty, got {self.v_min}..{self.v_max}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ValueConfig:
        raw: dict[str, Any] = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("value config must be a JSON object")
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown value config field(s): {sorted(unknown)}")
        for key in ("features", "hidden"):
            if key in raw:
                raw[key] = tuple(int(v) for v in raw[key])
        return cls(**raw)


class ValueMLP(nn.Module):
    """MLP from state features to value logits; normalisation in buffers, as :class:`ChunkMLP`."""

    feature_index: torch.Tensor
    state_mean: torch.Tensor
    state_std: torch.Tensor
    support: torch.Tensor

    def __init__(self, config: ValueConfig, features: np.ndarray | None = None) -> None:
        super().__init__()
        self.config = config
        n = len(config.features)
        mean = np.zeros(n, np.float32) if features is None else features.mean(axis=0)
        std = np.ones(n, np.float32) if features is None else np.maximum(features.std(axis=0), MIN_STD)
        layers: list[nn.Module] = []
        width = n
        for h in config.hidden:
            layers += [nn.Linear(width, h), nn.GELU()]
            width = h
        layers.append(nn.Linear(width, config.bins))
        self.net = nn.Sequential(*layers)
        self.register_buffer("feature_index", torch.tensor(config.features, dtype=torch.int64))
        self.register_buffer("state_mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("state_std", torch.as_tensor(std, dtype=torch.float32))
        self.register_buffer("support", torch.linspace(config.v_min, config.v_max, config.bins))

    def logits(self, state: torch.Tensor) -> torch.Tensor:
        """(B, state_dim) raw states -> (B, bins) logits."""
        x = (state.index_select(-1, self.feature_index) - self.state_mean) / self.state_std
        out: torch.Tensor = self.net(x)
        return out

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        """(B, state_dim) raw states -> (B,) value estimates (the distribution's mean)."""
        return torch.softmax(self.logits(state), dim=-1) @ self.support

    def two_hot(self, values: torch.Tensor) -> torch.Tensor:
        """(B,) values -> (B, bins) target distributions on the two bins around each value
        (clamped to the range), whose means are the values."""
        cfg = self.config
        pos = (values.clamp(cfg.v_min, cfg.v_max) - cfg.v_min) / (cfg.v_max - cfg.v_min) * (cfg.bins - 1)
        low = pos.floor().clamp(max=cfg.bins - 2)
        frac = (pos - low).unsqueeze(-1)
        out = torch.zeros(values.shape[0], cfg.bins, dtype=torch.float32)
        index = low.long().unsqueeze(-1)
        out.scatter_(-1, index, 1.0 - frac)
        out.scatter_add_(-1, index + 1, frac)
        return out

    def loss(self, state: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy between the predicted distributions and the two-hot targets."""
        logp = torch.log_softmax(self.logits(state), dim=-1)
        return -(self.two_hot(values) * logp).sum(dim=-1).mean()
