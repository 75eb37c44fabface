"""The reference training methods on a pulled version: ``bc``, ``filtered-bc`` and ``recap``.

- ``bc``: behaviour cloning of every policy and human step (:func:`takeover.app.policy.train.train`).
- ``filtered-bc``: behaviour cloning of the steps of successful attempts (``label`` success) and
  of human corrections (control class ``human``, which is the recorded control source ``human``).
- ``recap``: a value model fitted to the version's pinned value targets, per-step advantages from
  it, the improvement indicator from an advantage threshold (human steps forced positive), and a
  policy conditioned on the indicator, dropped on a fraction of samples (docs/learning.md).

Items are maps in the format of :func:`takeover.storage.pull` with the keys :data:`KEYS` names.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from takeover.app.policy.train import (
    HUMAN_SOURCE,
    Steps,
    TrainConfig,
    TrainResult,
    chunk_windows,
    fit_policy,
    group_steps,
    torch_threads,
)
from takeover.app.policy.value import ValueConfig, ValueMLP

log = logging.getLogger(__name__)

METHODS = ("bc", "filtered-bc", "recap")
SUCCESS_LABEL = 2
"""The ``label`` item key of a success (``takeover.storage.pull_keys.LABEL_CODES``)."""
BASE_KEYS = ("state", "action", "control_source", "episode_index", "step_index")
KEYS: dict[str, tuple[str, ...]] = {
    "bc": BASE_KEYS,
    "filtered-bc": (*BASE_KEYS, "label"),
    "recap": (*BASE_KEYS, "label", "control_class", "value_target"),
}
"""The item keys each method pulls."""
ADVANTAGE = "v[t] - v[t+N] + V(s[t+N]) - V(s[t]); v[t] - V(s[t]) where t+N is past the episode's end"


@dataclass(frozen=True)
class RecapConfig:
    """The parameters of ``recap`` besides the policy's :class:`TrainConfig`."""

    bins: int = 51
    """Discrete values of the value model's distribution, spanning the targets' range."""
    value_epochs: int = 200
    lookahead: int = 10
    """``N`` of the N-step advantage (0: to the end of the episode)."""
    positive_fraction: float = 0.3
    """Target fraction of non-human steps whose indicator is positive."""
    drop: float = 0.3
    """Fraction of samples trained without the indicator (the unconditioned input)."""
    guidance: float = 1.0
    """Run-time guidance weight stored with the policy (1: conditioned on improvement only)."""

    def __post_init__(self) -> None:
        if self.value_epochs < 1 or self.lookahead < 0:
            raise ValueError("value_epochs must be positive and lookahead not negative")
        for name in ("positive_fraction", "drop"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in 0..1, got {getattr(self, name)}")


@dataclass(frozen=True)
class Indicator:
    """The improvement indicator a recap job computed from its own value model, per step."""

    values: np.ndarray
    """(N,) value estimates V(s[t])."""
    advantage: np.ndarray
    improvement: np.ndarray
    threshold: float
    positive_fraction: float
    """The fraction of non-human steps positive (the target, as close as ties allow)."""
    non_human_steps: int

    def record(self, config: RecapConfig) -> dict[str, Any]:
        return {
            "source": "the checkpoint's own value model",
            "advantage": ADVANTAGE,
            "lookahead": config.lookahead,
            "target_fraction": config.positive_fraction,
            "positive_fraction": self.positive_fraction,
            "threshold": self.threshold,
            "non_human_steps": self.non_human_steps,
            "human_steps": "positive",
        }


@dataclass(frozen=True)
class ValueResult:
    model: ValueMLP
    losses: list[float]
    """Mean cross-entropy of each epoch."""


@dataclass(frozen=True)
class MethodResult:
    """What a method trained: the policy, its value model (recap) and the training record."""

    policy: TrainResult
    value: ValueMLP | None
    record: dict[str, Any]


def filtered_steps(steps: Steps, sources: tuple[int, ...]) -> np.ndarray:
    """Steps ``filtered-bc`` learns from: of a success or driven by a person (and of ``sources``)."""
    keep = (steps.columns["label"] == SUCCESS_LABEL) | (steps.sources == HUMAN_SOURCE)
    return np.isin(steps.sources, np.array(sorted(set(sources)))) & keep


def fit_value(steps: Steps, cfg: TrainConfig, recap: RecapConfig) -> ValueResult:
    """Fit a :class:`ValueMLP` to every step's ``value_target`` (cross-entropy on two-hot targets)."""
    targets = steps.columns["value_target"].astype(np.float32)
    low, high = float(targets.min()), float(targets.max())
    if high - low < 1e-3:
        low, high = low - 0.5, high + 0.5
    vcfg = ValueConfig(
        state_dim=cfg.model.state_dim,
        features=cfg.model.features,
        hidden=cfg.model.hidden,
        bins=recap.bins,
        v_min=low,
        v_max=high,
    )
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    model = ValueMLP(vcfg, steps.states[:, list(vcfg.features)])
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=recap.value_epochs)
    states, values = torch.from_numpy(steps.states), torch.from_numpy(targets)
    n = len(states)
    losses: list[float] = []
    for epoch in range(recap.value_epochs):
        order = torch.randperm(n, generator=gen)
        total = 0.0
        for start in range(0, n, cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            loss = model.loss(states[idx], values[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        losses.append(total / n)
        if not math.isfinite(losses[-1]):
            raise FloatingPointError(f"value training diverged at epoch {epoch + 1}")
    model.eval()
    log.info("value model: loss %.4f -> %.4f", losses[0], losses[-1])
    return ValueResult(model, losses)


def indicator(steps: Steps, model: ValueMLP, recap: RecapConfig) -> Indicator:
    """Advantages of every step from ``model`` (:data:`ADVANTAGE`) and the improvement indicator:
    above the threshold that makes ``positive_fraction`` of the non-human steps positive (a tie
    gives fewer), and positive on every human step."""
    with torch.inference_mode():
        estimate = model(torch.from_numpy(steps.states)).numpy().astype(np.float64)
    v = steps.columns["value_target"]
    later = steps.ahead(recap.lookahead) if recap.lookahead > 0 else np.full(len(v), -1)
    inside = later >= 0
    j = np.where(inside, later, 0)
    advantage = np.where(inside, v - v[j] + estimate[j] - estimate, v - estimate)
    human = steps.columns["control_class"] == HUMAN_SOURCE
    others = np.sort(advantage[~human])[::-1]
    k = round(recap.positive_fraction * len(others))
    if len(others) == 0 or k >= len(others):
        threshold = float(others[-1]) - 1.0 if len(others) else 0.0
    elif k == 0:
        threshold = float(others[0]) + 1.0
    else:
        threshold = float(others[k - 1] + others[k]) / 2.0
    improvement = (advantage > threshold) | human
    reached = float(np.mean(advantage[~human] > threshold)) if len(others) else 0.0
    return Indicator(estimate, advantage, improvement, threshold, reached, len(others))


def train_method(
    method: str,
    items: Iterable[Mapping[str, Any]],
    config: TrainConfig | None = None,
    recap: RecapConfig | None = None,
) -> MethodResult:
    """Train with ``method`` (one of :data:`METHODS`) on items pulled with ``KEYS[method]``."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    cfg = config or TrainConfig()
    rcfg = recap or RecapConfig()
    columns = tuple(k for k in KEYS[method] if k not in BASE_KEYS)
    with torch_threads(cfg.threads):
        steps = group_steps(items, columns)
        allowed = np.isin(steps.sources, np.array(sorted(set(cfg.sources))))
        if method == "bc":
            return _finish(method, cfg, fit_policy(chunk_windows(steps, cfg.model.horizon, allowed), cfg))
        if method == "filtered-bc":
            keep = filtered_steps(steps, cfg.sources)
            if not keep.any():
                raise ValueError("no step of a success or of a person to learn from")
            return _finish(method, cfg, fit_policy(chunk_windows(steps, cfg.model.horizon, keep), cfg))
        return _recap(steps, allowed, cfg, rcfg)


def _recap(steps: Steps, allowed: np.ndarray, cfg: TrainConfig, rcfg: RecapConfig) -> MethodResult:
    t0 = time.perf_counter()
    value = fit_value(steps, cfg, rcfg)
    ind = indicator(steps, value.model, rcfg)
    pcfg = replace(cfg, model=replace(cfg.model, conditioned=True, guidance=rcfg.guidance))
    data = chunk_windows(steps, pcfg.model.horizon, allowed)
    policy = fit_policy(data, pcfg, ind.improvement[data.rows], rcfg.drop)
    vcfg = value.model.config
    extra = {
        "value_model": {
            "bins": vcfg.bins,
            "v_min": vcfg.v_min,
            "v_max": vcfg.v_max,
            "epochs": rcfg.value_epochs,
            "loss": "cross-entropy on two-hot targets over the bins",
            "initial_loss": value.losses[0],
            "final_loss": value.losses[-1],
        },
        "indicator": ind.record(rcfg),
        "indicator_dropout": rcfg.drop,
        "guidance": rcfg.guidance,
        "positive_samples": int(ind.improvement[data.rows].sum()),
    }
    policy = replace(policy, seconds=time.perf_counter() - t0)  # the value model's time included
    return MethodResult(policy, value.model, _finish("recap", pcfg, policy, **extra).record)


def _finish(method: str, cfg: TrainConfig, result: TrainResult, **extra: Any) -> MethodResult:
    descriptions = {
        "bc": "behaviour cloning, masked L1 on normalised action chunks",
        "filtered-bc": "behaviour cloning of the steps of successes and of human corrections",
        "recap": "RECAP: value model, advantage-conditioned policy with indicator dropout",
    }
    record = result.record(cfg, method=method, description=descriptions[method], **extra)
    return MethodResult(result, None, record)


@dataclass(frozen=True)
class Pulled:
    """A version's items for a method, its digest and the training labels it pins (if any)."""

    items: Sequence[Mapping[str, Any]]
    version: str
    labels: dict[str, Any] | None
    """The pinned training labels' parameters, their digest and the batch's figures."""

    def record(self, tag: str) -> dict[str, Any]:
        return {"tag": tag, "version": self.version, "training_labels": self.labels}


def pull_for(
    method: str,
    tag: str,
    store: str | None = None,
    *,
    catalog_url: str | None = None,
    blob_url: str | None = None,
) -> Pulled:
    """The step items ``method`` needs of a tagged version (no camera frame decoded), the version's
    digest and the figures of the training labels it pins. ``recap`` needs pinned labels (its
    value targets); a version without them is refused in one line naming the command."""
    from pathlib import Path

    from takeover.annotation.training_params import TrainingLabelParams
    from takeover.storage import pull
    from takeover.storage.derived import training_columns
    from takeover.storage.paths import default_store_root
    from takeover.storage.store import Store

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    with Store.open(Path(store) if store else default_store_root(), catalog_url, blob_url=blob_url) as st:
        ds = pull(tag, st, keys=list(KEYS[method]))
        try:
            items = [ds[i] for i in range(len(ds))]
            columns = training_columns(st.derived_blobs, ds.manifest.episodes, tag)
        finally:
            ds.close()
    labels = None
    if columns is not None:
        labels = dict(columns.figures)
        labels["params_digest"] = TrainingLabelParams.from_dict(labels["params"]).digest()
    return Pulled(items, ds.version, labels)
