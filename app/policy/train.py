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
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
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
class ChunkDataset:
    """Arrays ready for training: states (N, S), targets (N, H, A), mask (N, H)."""

    states: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    episodes: int


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


def build_chunks(
    items: Iterable[Mapping[str, Any]], horizon: int, sources: tuple[int, ...] = (POLICY_SOURCE, HUMAN_SOURCE)
) -> ChunkDataset:
    """Group step items into episodes and build action-chunk targets with a validity mask."""
    episodes: dict[int, list[tuple[int, np.ndarray, np.ndarray, int]]] = defaultdict(list)
    for i, item in enumerate(items):
        try:
            ep = int(_as_array(item["episode_index"]))
            step = int(_as_array(item["step_index"]))
            src = int(_as_array(item["control_source"]))
            state = _as_array(item["state"]).astype(np.float32).reshape(-1)
            action = _as_array(item["action"]).astype(np.float32).reshape(-1)
        except KeyError as exc:
            raise ValueError(f"item {i} has no field {exc}") from None
        episodes[ep].append((step, state, action, src))
    if not episodes:
        raise ValueError("the dataset has no steps")
    allowed = np.array(sorted(set(sources)))
    states, targets, masks = [], [], []
    for ep in sorted(episodes):
        steps = sorted(episodes[ep], key=lambda r: r[0])
        index = [r[0] for r in steps]
        if len(set(index)) != len(index):
            raise ValueError(f"episode {ep} has duplicate step indices")
        s = np.stack([r[1] for r in steps])
        a = np.stack([r[2] for r in steps])
        source = np.array([r[3] for r in steps])
        trainable = np.isin(source, allowed)
        n_steps, adim = a.shape
        pad_a = np.concatenate([a, np.zeros((horizon - 1, adim), np.float32)])
        pad_m = np.concatenate([trainable, np.zeros(horizon - 1, bool)])
        windows = np.arange(n_steps)[:, None] + np.arange(horizon)[None, :]  # (T, H) target indices
        states.append(s[trainable])
        targets.append(pad_a[windows][trainable])
        masks.append(pad_m[windows][trainable])
    out_s = np.concatenate(states)
    if len(out_s) == 0:
        raise ValueError(f"no steps with a control source in {list(sources)} to learn from")
    if not (np.all(np.isfinite(out_s)) and all(np.all(np.isfinite(t)) for t in targets)):
        raise ValueError("the dataset contains NaN or Inf states or actions")
    return ChunkDataset(out_s, np.concatenate(targets), np.concatenate(masks), len(episodes))


def train(items: Iterable[Mapping[str, Any]], config: TrainConfig | None = None) -> TrainResult:
    """Fit a :class:`ChunkMLP` to the items by behaviour cloning."""
    cfg = config or TrainConfig()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _train(items, cfg)
    finally:
        torch.set_num_threads(previous_threads)


def _train(items: Iterable[Mapping[str, Any]], cfg: TrainConfig) -> TrainResult:
    mcfg = cfg.model
    data = build_chunks(items, mcfg.horizon, cfg.sources)
    if data.states.shape[1] != mcfg.state_dim or data.targets.shape[2] != mcfg.action_dim:
        raise ValueError(
            f"dataset has states of {data.states.shape[1]} and actions of {data.targets.shape[2]}; "
            f"the model expects {mcfg.state_dim} and {mcfg.action_dim}"
        )
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
    n = len(states)
    losses: list[float] = []
    for epoch in range(cfg.epochs):
        order = torch.randperm(n, generator=gen)
        total, weight = 0.0, 0.0
        for start in range(0, n, cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            pred = model.forward_normalized(states[idx])
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


def pull_items(
    tag: str, store: str | None = None, *, catalog_url: str | None = None, blob_url: str | None = None
) -> tuple[Iterator[Mapping[str, Any]], str]:
    """The step items of a tagged dataset version (default store, or the one at ``store``, with its
    catalog and blob URLs) and the version's digest. Camera frames are not decoded: the policy
    learns from state only."""
    from takeover.storage import pull

    keys = ["state", "action", "control_source", "episode_index", "step_index"]
    ds = pull(tag, store, catalog_url=catalog_url, blob_url=blob_url, keys=keys)  # no frame fetched
    return (ds[i] for i in range(len(ds))), ds.version
