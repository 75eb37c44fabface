"""Derived training labels: per-step control-source classes, RECAP value targets and the binary
improvement indicator, as deterministic functions of the control source, the takeovers, the outcome
label and :class:`TrainingLabelParams` (numpy only, no I/O).

The value targets of a batch share one normalisation (the horizon), and the baseline value
estimate and the advantage threshold are computed over the batch, so labels are derived for a
batch of episodes at once (:func:`derive_training_labels`). Definitions and formulas:
``docs/training_labels.md``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from takeover.annotation.boundaries import BoundaryKind
from takeover.annotation.boundary_edits import effective_boundaries
from takeover.annotation.training_params import BASELINE, TrainingLabelParams
from takeover.storage.boundary_edits import BoundaryEdit
from takeover.storage.schema import ControlSource, Episode, TimedStream

OUTCOMES = ("success", "near_success", "failure")


class ControlClass(enum.IntEnum):
    """Who drove a step, for training. Equal to :class:`ControlSource` except for the policy steps
    of a pre-intervention window."""

    POLICY = int(ControlSource.POLICY)
    HUMAN = int(ControlSource.HUMAN)
    HOLD = int(ControlSource.HOLD)
    """The robot was held (pause, e-stop reset): neither the policy nor a person drove. Kept as its
    own class; in the indicator it is a non-human step like any other."""
    RAMP = int(ControlSource.RAMP)
    """The hand-back window: the policy blended in over the human's last action (not forced positive)."""
    PRE_INTERVENTION = 4
    """A policy step within the window before a takeover: the policy was already going wrong."""


@dataclass(frozen=True)
class LabelInput:
    """What the labels of one episode are derived from."""

    episode_id: str
    control_source: np.ndarray
    """(T,) :class:`ControlSource` per step."""
    takeover_steps: tuple[int, ...]
    """First human step of each takeover (where it counts from, after boundary edits)."""
    outcome: str
    """'success', 'near_success' or 'failure'."""
    rate_hz: float
    model_value: np.ndarray | None = None
    """(T,) the recorded value estimate named by ``value_source`` at each step, if the episode has it."""
    window_starts: tuple[int | None, ...] = ()
    """Per takeover (aligned with ``takeover_steps``), the first step of a pre-intervention window an
    annotator marked (:mod:`takeover.annotation.boundary_edits`); None or absent: the default window."""

    @property
    def num_steps(self) -> int:
        return int(np.asarray(self.control_source).shape[0])


@dataclass(frozen=True)
class EpisodeLabels:
    """The derived labels of one episode (arrays of one value per step)."""

    episode_id: str
    outcome: str
    control_class: np.ndarray
    """(T,) uint8 :class:`ControlClass`."""
    value_target: np.ndarray
    """(T,) float32 RECAP value target."""
    value_estimate: np.ndarray
    """(T,) float32 the value estimate the advantage is taken against."""
    advantage: np.ndarray
    """(T,) float32."""
    improvement: np.ndarray
    """(T,) bool: advantage above the batch threshold, or a human step."""
    value_source: str
    """'baseline' or the name of the recorded stream the estimate came from."""
    pre_window_steps: int

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-step arrays by the names they are stored and pulled under."""
        return {
            "control_class": self.control_class,
            "value_target": self.value_target,
            "value_estimate": self.value_estimate,
            "advantage": self.advantage,
            "improvement": self.improvement,
        }


@dataclass(frozen=True)
class TrainingLabels:
    """The labels of a batch, with the figures a training job records to name its indicator."""

    params: TrainingLabelParams
    episodes: tuple[EpisodeLabels, ...]
    """Sorted by episode id."""
    horizon_steps: int
    """The normalisation length used (the parameter, or the longest episode of the batch)."""
    baseline: np.ndarray
    """(baseline_points,) float64: the baseline value at evenly spaced progress from 0 to 1."""
    threshold: float
    """Non-human steps with an advantage above this are positive."""
    positive_fraction: float
    """The fraction of the batch's non-human steps that are positive (the target is a parameter)."""
    non_human_steps: int

    @property
    def value_sources(self) -> dict[str, int]:
        """Episodes per value source."""
        out: dict[str, int] = {}
        for e in self.episodes:
            out[e.value_source] = out.get(e.value_source, 0) + 1
        return dict(sorted(out.items()))


# -- control-source classes ------------------------------------------------------------------------
def control_classes(
    control_source: np.ndarray,
    takeover_steps: Sequence[int],
    pre_window: int,
    window_starts: Sequence[int | None] = (),
) -> np.ndarray:
    """(T,) uint8 :class:`ControlClass`: the control source, with the policy steps among the
    ``pre_window`` steps before each takeover marked pre-intervention (or from the takeover's
    entry of ``window_starts``, where an annotator marked the window)."""
    cs = np.asarray(control_source)
    known = np.isin(cs, [int(c) for c in ControlSource])
    if cs.ndim != 1 or not known.all():
        raise ValueError("control_source must be one ControlSource value per step")
    classes = cs.astype(np.uint8)
    policy = cs == int(ControlSource.POLICY)
    for k, step in enumerate(takeover_steps):
        if not 0 <= step <= cs.shape[0]:
            raise ValueError(f"takeover at step {step} outside 0..{cs.shape[0]}")
        marked = window_starts[k] if k < len(window_starts) else None
        lo = max(0, int(step) - pre_window) if marked is None else max(0, min(int(marked), int(step)))
        window = classes[lo:step]
        window[policy[lo:step]] = ControlClass.PRE_INTERVENTION
    return classes


# -- value targets ---------------------------------------------------------------------------------
def outcome_penalty(outcome: str, params: TrainingLabelParams) -> float:
    if outcome == "success":
        return 0.0
    if outcome == "near_success":
        return params.near_success_penalty
    if outcome == "failure":
        return params.failure_penalty
    raise ValueError(f"outcome must be one of {list(OUTCOMES)}, got {outcome!r}")


def value_targets(num_steps: int, outcome: str, horizon: int, params: TrainingLabelParams) -> np.ndarray:
    """(T,) float64: ``-(T-1-t)/horizon - penalty(outcome)``."""
    if num_steps > horizon:
        raise ValueError(f"an episode of {num_steps} steps is longer than the horizon of {horizon} steps")
    to_go = np.arange(num_steps - 1, -1, -1, dtype=np.float64)
    return -to_go / float(horizon) - outcome_penalty(outcome, params)


# -- value estimates ------------------------------------------------------------------------------
def progress(num_steps: int) -> np.ndarray:
    """(T,) normalised progress ``t / (T-1)`` (1 for a single step)."""
    if num_steps == 1:
        return np.ones(1)
    return np.arange(num_steps, dtype=np.float64) / float(num_steps - 1)


def progress_grid(points: int) -> np.ndarray:
    """``points`` evenly spaced progress values from 0 to 1."""
    return np.linspace(0.0, 1.0, points)


def baseline_curve(targets: Sequence[np.ndarray], points: int) -> np.ndarray:
    """(points,) the baseline on :func:`progress_grid`: at each progress, the mean over the episodes
    of their value targets interpolated linearly at that progress (every episode counts once)."""
    grid = progress_grid(points)
    return np.mean([np.interp(grid, progress(v.shape[0]), v) for v in targets], axis=0)


def baseline_estimate(num_steps: int, curve: np.ndarray) -> np.ndarray:
    """(T,) the baseline at each step's progress (linear between the grid points)."""
    return np.interp(progress(num_steps), progress_grid(curve.shape[0]), curve)


def stream_per_step(stream: TimedStream, timestamps: np.ndarray, name: str) -> np.ndarray:
    """(T,) float64: at each step the latest sample of ``stream`` at or before the step's time (the
    first sample before it arrived)."""
    values = np.asarray(stream.values, dtype=np.float64)
    if values.shape[0] == 0 or values.reshape(values.shape[0], -1).shape[1] != 1:
        raise ValueError(f"stream {name} must hold one number per sample to serve as a value estimate")
    values = values.reshape(-1)
    if not np.isfinite(values).all():
        raise ValueError(f"stream {name} has values that are not finite numbers")
    idx = np.searchsorted(np.asarray(stream.timestamps), np.asarray(timestamps), side="right") - 1
    return values[np.maximum(idx, 0)]


# -- advantage and indicator -----------------------------------------------------------------------
def advantages(targets: np.ndarray, estimate: np.ndarray, lookahead: int) -> np.ndarray:
    """(T,) float64: ``v[t] - v[t+N] + V[t+N] - V[t]`` where ``t+N`` is inside the episode, else
    ``v[t] - V[t]`` (``v`` the targets, ``V`` the estimate; ``N = 0`` means to the end)."""
    adv = targets - estimate
    n = targets.shape[0]
    if 0 < lookahead < n:
        head = slice(0, n - lookahead)
        tail = slice(lookahead, n)
        adv[head] = targets[head] - targets[tail] + estimate[tail] - estimate[head]
    return adv


def choose_threshold(values: np.ndarray, fraction: float) -> float:
    """A threshold ``h`` so that the fraction of ``values`` above it is as close to ``fraction``
    as ties allow (fewer positives on a draw): midway between two neighbouring distinct values,
    below the smallest (all positive) or at the largest (none)."""
    if values.size == 0:
        return 0.0
    distinct, counts = np.unique(values, return_counts=True)
    # above[j]: how many values are above a threshold placed just above distinct[j - 1]; j = 0: all
    above = np.concatenate([[values.size], values.size - np.cumsum(counts)])
    j = int(np.argmin(np.abs(above - fraction * values.size) + 1e-9 * above))
    if j == 0:
        return float(distinct[0]) - 1.0
    if j == distinct.size:
        return float(distinct[-1])
    return float((np.float64(distinct[j - 1]) + np.float64(distinct[j])) / 2.0)


# -- inputs from an episode ------------------------------------------------------------------------
def label_input(
    episode: Episode, outcome: str, params: TrainingLabelParams, edits: Sequence[BoundaryEdit] = ()
) -> LabelInput:
    """The inputs of one recorded episode: its control source, its takeovers (from
    :func:`find_boundaries`, where they count from after ``edits``, with the windows marked there)
    and the recorded value stream the parameters name, if it has one."""
    takeover_bounds = [b for b in effective_boundaries(episode, edits) if b.kind is BoundaryKind.TAKEOVER]
    default = params.pre_window_steps(float(episode.meta.rate_hz))
    ends, starts = [], []
    for b in takeover_bounds:
        # A takeover moved earlier: the policy steps up to where it was recorded were already being
        # taken over, so the window runs on to the recorded step.
        ends.append(max(b.step, b.recorded_step))
        marked = b.pre_window_start
        starts.append(marked if marked is not None else (max(0, b.step - default) if b.moved else None))
    takeovers = tuple(ends)
    model_value = None
    if params.value_source != BASELINE and params.value_source in episode.streams:
        model_value = stream_per_step(
            episode.streams[params.value_source], episode.timestamps, params.value_source
        )
    return LabelInput(
        episode_id=episode.meta.episode_id,
        control_source=np.asarray(episode.control_source),
        takeover_steps=takeovers,
        outcome=outcome,
        rate_hz=float(episode.meta.rate_hz),
        model_value=model_value,
        window_starts=tuple(starts) if any(w is not None for w in starts) else (),
    )


# -- the batch -------------------------------------------------------------------------------------
def derive_training_labels(inputs: Sequence[LabelInput], params: TrainingLabelParams) -> TrainingLabels:
    """The labels of every episode of a batch (in any order; the result is sorted by episode id)."""
    batch = sorted(inputs, key=lambda i: i.episode_id)
    ids = [i.episode_id for i in batch]
    if len(set(ids)) != len(ids):
        raise ValueError("each episode may be given once")
    if not batch:
        raise ValueError("training labels need at least one episode")
    for i in batch:
        if i.num_steps == 0:
            raise ValueError(f"episode {i.episode_id} has no steps")
        if i.model_value is not None and np.asarray(i.model_value).shape != (i.num_steps,):
            raise ValueError(f"episode {i.episode_id}: the model value must have one number per step")
    longest = max(i.num_steps for i in batch)
    horizon = params.horizon_steps or longest
    targets = [value_targets(i.num_steps, i.outcome, horizon, params) for i in batch]
    curve = baseline_curve(targets, params.baseline_points)
    classes, estimates, advs, sources, windows = [], [], [], [], []
    for item, v in zip(batch, targets, strict=True):
        window = params.pre_window_steps(item.rate_hz)
        windows.append(window)
        classes.append(control_classes(item.control_source, item.takeover_steps, window, item.window_starts))
        if params.value_source != BASELINE and item.model_value is not None:
            est, source = np.asarray(item.model_value, dtype=np.float64), params.value_source
        else:
            est, source = baseline_estimate(item.num_steps, curve), BASELINE
        estimates.append(est)
        sources.append(source)
        advs.append(advantages(v, est, params.advantage_lookahead).astype(np.float32))
    non_human = [c != ControlClass.HUMAN for c in classes]
    population = np.concatenate([a[m] for a, m in zip(advs, non_human, strict=True)])
    threshold = choose_threshold(population, params.positive_fraction)
    episodes = []
    positives = 0
    for k, item in enumerate(batch):
        improvement = (advs[k].astype(np.float64) > threshold) | ~non_human[k]
        positives += int(improvement[non_human[k]].sum())
        episodes.append(
            EpisodeLabels(
                episode_id=item.episode_id,
                outcome=item.outcome,
                control_class=classes[k],
                value_target=targets[k].astype(np.float32),
                value_estimate=estimates[k].astype(np.float32),
                advantage=advs[k],
                improvement=improvement,
                value_source=sources[k],
                pre_window_steps=windows[k],
            )
        )
    return TrainingLabels(
        params=params,
        episodes=tuple(episodes),
        horizon_steps=horizon,
        baseline=curve,
        threshold=threshold,
        positive_fraction=positives / population.size if population.size else 0.0,
        non_human_steps=int(population.size),
    )
