"""Behaviour cloning of the chunk policy on steps pulled from the store.

Items are maps with ``state`` (S,), ``action`` (A,), ``control_source``, ``episode_index`` and
``step_index`` (tensors, arrays or numbers), the format :func:`takeover.storage.pull` yields.
Steps are grouped by episode and ordered by step index; the target for step ``t`` is the executed
actions ``t .. t+H-1``. Target steps past the end of the episode, or whose control source is not
one of ``sources``, are masked out of the loss; a sample is kept when its own step is trainable.

Training is deterministic for a seed on a given machine and torch build (CPU, fixed order of
operations; the shuffling generator is seeded explicitly).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from takeover.app.policy.model import ChunkMLP, NormStats, PolicyConfig

log = logging.getLogger(__name__)

POLICY_SOURCE, HUMAN_SOURCE, HOLD_SOURCE = 0, 1, 2
"""Values of ``control_source`` (see ``takeover.storage.schema.ControlSource``)."""


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 200
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    sources: tuple[int, ...] = (POLICY_SOURCE, HUMAN_SOURCE)
    """Control sources whose actions are imitated (holds are not)."""
    model: PolicyConfig = field(default_factory=PolicyConfig)
    threads: int = 1
    """Torch CPU threads while training. The model is small: one thread is fastest, and more
    threads slow down badly when the cores are shared with the simulator or other jobs."""

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be positive")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")
        if not self.sources:
            raise ValueError("sources must name at least one control source")


@dataclass(frozen=True)
class Steps:
    """Step items grouped by episode and ordered by step index: one row per step."""

    states: np.ndarray
    """(N, S) float32."""
    actions: np.ndarray
    """(N, A) float32."""
    sources: np.ndarray
    """(N,) control source."""
    episode: np.ndarray
    """(N,) position of the row's episode in episode order (0, 1, ...)."""
    columns: dict[str, np.ndarray]
    """Further per-step values asked for by name (e.g. ``label``, ``value_target``), (N,) each."""

    @property
    def episodes(self) -> int:
        return int(self.episode[-1]) + 1

    def ahead(self, n: int) -> np.ndarray:
        """(N,) row of the step ``n`` steps later in the same episode, or -1 past its end."""
        rows = np.arange(len(self.episode)) + n
        inside = rows < len(self.episode)
        same = np.zeros(len(rows), bool)
        same[inside] = self.episode[rows[inside]] == self.episode[inside]
        return np.where(same, rows, -1)


@dataclass(frozen=True)
class ChunkDataset:
    """Arrays ready for training: states (N, S), targets (N, H, A), mask (N, H); ``rows``: the
    row of each sample's own step in the :class:`Steps` it was made from."""

    states: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    episodes: int
    rows: np.ndarray


@dataclass(frozen=True)
class TrainResult:
    model: ChunkMLP
    losses: list[float]
    """Mean masked L1 loss (normalised units) of each epoch."""
    samples: int
    episodes: int
    seconds: float

    def record(self, config: TrainConfig, **extra: Any) -> dict[str, Any]:
        """A JSON-ready description for the checkpoint's ``training`` metadata."""
        return {
            "method": "behaviour cloning, masked L1 on normalised action chunks",
            "epochs": config.epochs,
            "batch_size": config.batch_size,
            "lr": config.lr,
            "weight_decay": config.weight_decay,
            "seed": config.seed,
            "sources": list(config.sources),
            "samples": self.samples,
            "episodes": self.episodes,
            "final_loss": self.losses[-1],
            **extra,
        }


def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def group_steps(items: Iterable[Mapping[str, Any]], columns: tuple[str, ...] = ()) -> Steps:
    """Group step items into episodes ordered by step index, keeping the ``columns`` asked for."""
    fields = ("episode_index", "step_index", "control_source", "state", "action", *columns)
    rows: list[tuple[int, int, int, np.ndarray, np.ndarray, tuple[float, ...]]] = []
    for i, item in enumerate(items):
        try:
            values = [item[f] for f in fields]
        except KeyError as exc:
            raise ValueError(f"item {i} has no field {exc}") from None
        ep, step, src = (int(_as_array(v)) for v in values[:3])
        state = _as_array(values[3]).astype(np.float32).reshape(-1)
        action = _as_array(values[4]).astype(np.float32).reshape(-1)
        rows.append((ep, step, src, state, action, tuple(float(_as_array(v)) for v in values[5:])))
    if not rows:
        raise ValueError("the dataset has no steps")
    rows.sort(key=lambda r: (r[0], r[1]))
    keys = np.array([(r[0], r[1]) for r in rows])
    repeated = np.flatnonzero(np.all(keys[1:] == keys[:-1], axis=1))
    if len(repeated):
        raise ValueError(f"episode {keys[repeated[0], 0]} has duplicate step indices")
    states, actions = np.stack([r[3] for r in rows]), np.stack([r[4] for r in rows])
    if not (np.all(np.isfinite(states)) and np.all(np.isfinite(actions))):
        raise ValueError("the dataset contains NaN or Inf states or actions")
    episode = np.unique(keys[:, 0], return_inverse=True)[1].reshape(-1)
    extra = np.array([r[5] for r in rows], dtype=np.float64).reshape(len(rows), len(columns))
    return Steps(
        states,
        actions,
        np.array([r[2] for r in rows], dtype=np.int64),
        episode.astype(np.int64),
        {name: extra[:, j] for j, name in enumerate(columns)},
    )


def chunk_windows(steps: Steps, horizon: int, trainable: np.ndarray) -> ChunkDataset:
    """A sample for every trainable step; its targets are the actions of steps ``t .. t+H-1``,
    masked past the episode's end and where the step is not trainable."""
    rows = np.flatnonzero(trainable)
    if len(rows) == 0:
        raise ValueError("no steps to learn from")
    windows = rows[:, None] + np.arange(horizon)[None, :]
    n = len(steps.episode)
    clipped = np.minimum(windows, n - 1)
    mask = (windows < n) & (steps.episode[clipped] == steps.episode[rows][:, None]) & trainable[clipped]
    targets = np.where(mask[..., None], steps.actions[clipped], np.float32(0.0)).astype(np.float32)
    return ChunkDataset(steps.states[rows], targets, mask, steps.episodes, rows)


def build_chunks(
    items: Iterable[Mapping[str, Any]], horizon: int, sources: tuple[int, ...] = (POLICY_SOURCE, HUMAN_SOURCE)
) -> ChunkDataset:
    """Group step items into episodes and build action-chunk targets with a validity mask."""
    steps = group_steps(items)
    trainable = np.isin(steps.sources, np.array(sorted(set(sources))))
    if not trainable.any():
        raise ValueError(f"no steps with a control source in {list(sources)} to learn from")
    return chunk_windows(steps, horizon, trainable)


def train(items: Iterable[Mapping[str, Any]], config: TrainConfig | None = None) -> TrainResult:
    """Fit a :class:`ChunkMLP` to the items by behaviour cloning."""
    cfg = config or TrainConfig()
    with torch_threads(cfg.threads):
        return fit_policy(build_chunks(items, cfg.model.horizon, cfg.sources), cfg)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Torch CPU threads set to ``n`` inside the block."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def fit_policy(
    data: ChunkDataset, cfg: TrainConfig, indicator: np.ndarray | None = None, drop: float = 0.0
) -> TrainResult:
    """Fit a :class:`ChunkMLP` of ``cfg.model`` to the chunks (masked L1 in normalised units).

    A conditioned model (``cfg.model.conditioned``) takes each sample's ``indicator`` (bool, one
    per sample) as ``(indicator, 1)``, replaced by the unconditioned ``(0, 0)`` on a fraction
    ``drop`` of the samples of every batch, drawn afresh each time."""
    mcfg = cfg.model
    if data.states.shape[1] != mcfg.state_dim or data.targets.shape[2] != mcfg.action_dim:
        raise ValueError(
            f"dataset has states of {data.states.shape[1]} and actions of {data.targets.shape[2]}; "
            f"the model expects {mcfg.state_dim} and {mcfg.action_dim}"
        )
    if mcfg.conditioned != (indicator is not None):
        raise ValueError("a conditioned model needs an indicator per sample, and only it")
    features = data.states[:, list(mcfg.features)]
    stats = NormStats.fit(features, data.targets[data.mask])

    t_start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = ChunkMLP(mcfg, stats)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)

    states = torch.from_numpy(data.states)
    targets = model.normalize_actions(torch.from_numpy(data.targets))
    mask = torch.from_numpy(data.mask).to(torch.float32).unsqueeze(-1)
    flags = None if indicator is None else torch.from_numpy(np.asarray(indicator, np.float32))
    n = len(states)
    losses: list[float] = []
    for epoch in range(cfg.epochs):
        order = torch.randperm(n, generator=gen)
        total, weight = 0.0, 0.0
        for start in range(0, n, cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            condition = None
            if flags is not None:
                known = (torch.rand(len(idx), generator=gen) >= drop).to(torch.float32)
                condition = torch.stack([flags[idx] * known, known], dim=-1)
            pred = model.forward_normalized(states[idx], condition)
            m = mask[idx]
            denom = m.sum() * mcfg.action_dim
            loss = ((pred - targets[idx]).abs() * m).sum() / denom.clamp(min=1.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * float(denom)
            weight += float(denom)
        sched.step()
        losses.append(total / max(weight, 1.0))
        if not math.isfinite(losses[-1]):
            raise FloatingPointError(f"training diverged at epoch {epoch + 1}")
        if epoch == 0 or (epoch + 1) % max(1, cfg.epochs // 10) == 0:
            log.info("epoch %d/%d loss %.4f", epoch + 1, cfg.epochs, losses[-1])
    model.eval()
    return TrainResult(model, losses, n, data.episodes, time.perf_counter() - t_start)
