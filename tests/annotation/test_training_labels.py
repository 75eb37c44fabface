"""Properties of the derived training labels on generated batches of episodes."""

from __future__ import annotations

import os

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from takeover.annotation.training_labels import (
    OUTCOMES,
    ControlClass,
    LabelInput,
    TrainingLabels,
    derive_training_labels,
)
from takeover.annotation.training_params import TrainingLabelParams

from .helpers import HOLD, RAMP, H, P

SETTINGS = settings(max_examples=int(os.environ.get("LABEL_EXAMPLES", "80")), deadline=None)


def takeovers_of(cs: list[int]) -> tuple[int, ...]:
    """First human step of each run of human steps after another source."""
    return tuple(i for i in range(1, len(cs)) if cs[i] == H and cs[i - 1] != H)


@st.composite
def label_inputs(draw: st.DrawFn, episode_id: str, outcome: str | None = None) -> LabelInput:
    n_seg = draw(st.integers(1, 6))
    sources = [draw(st.sampled_from([P, H, HOLD, RAMP]))]
    for _ in range(n_seg - 1):
        sources.append(draw(st.sampled_from([s for s in (P, H, HOLD, RAMP) if s != sources[-1]])))
    cs = np.repeat(sources, [draw(st.integers(1, 15)) for _ in sources]).astype(np.uint8)
    return LabelInput(
        episode_id=episode_id,
        control_source=cs,
        takeover_steps=takeovers_of(cs.tolist()),
        outcome=outcome if outcome is not None else draw(st.sampled_from(OUTCOMES)),
        rate_hz=draw(st.sampled_from([10.0, 20.0, 50.0])),
    )


@st.composite
def batches(draw: st.DrawFn, outcomes: tuple[str, ...] = ()) -> list[LabelInput]:
    """A few episodes, the ``outcomes`` among them first, the rest of any outcome."""
    n = draw(st.integers(max(1, len(outcomes)), 6))
    fixed = list(outcomes) + [None] * (n - len(outcomes))
    return [draw(label_inputs(f"ep-{k:02d}", fixed[k])) for k in range(n)]


@st.composite
def label_params(draw: st.DrawFn) -> TrainingLabelParams:
    steps = draw(st.booleans())
    return TrainingLabelParams(
        pre_window=draw(st.integers(0, 10)) if steps else draw(st.sampled_from([0.0, 0.1, 0.25, 0.5])),
        pre_window_unit="steps" if steps else "s",
        failure_penalty=draw(st.sampled_from([1.0, 1.5, 2.0, 5.0])),
        near_success_fraction=draw(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])),
        advantage_lookahead=draw(st.sampled_from([0, 1, 3, 8])),
        positive_fraction=draw(st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.9, 1.0])),
        baseline_points=draw(st.sampled_from([2, 11, 101])),
    )


def _by_outcome(labels: TrainingLabels, outcome: str) -> np.ndarray:
    parts = [e.value_target for e in labels.episodes if e.outcome == outcome]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def _fingerprint(labels: TrainingLabels) -> bytes:
    out = [repr((labels.threshold, labels.horizon_steps, labels.positive_fraction)).encode()]
    out.append(labels.baseline.tobytes())
    for e in labels.episodes:
        out.append(e.episode_id.encode() + e.value_source.encode())
        out += [a.tobytes() for a in e.arrays().values()]
    return b"".join(out)


@SETTINGS
@given(batches(("success",)), label_params())
def test_value_targets_of_a_success_rise_to_zero(
    batch: list[LabelInput], params: TrainingLabelParams
) -> None:
    labels = derive_training_labels(batch, params)
    for e in labels.episodes:
        assert e.value_target.dtype == np.float32
        if e.outcome == "success":
            assert np.all(np.diff(e.value_target) >= 0)
            assert e.value_target[-1] == 0.0
            assert np.all(e.value_target > -1.0)


@SETTINGS
@given(batches(("success", "failure")), label_params())
def test_every_failure_step_is_below_every_success_step(
    batch: list[LabelInput], params: TrainingLabelParams
) -> None:
    labels = derive_training_labels(batch, params)
    assert _by_outcome(labels, "failure").max() < _by_outcome(labels, "success").min()


@SETTINGS
@given(batches(("success", "near_success", "failure")), label_params())
def test_near_success_lies_between_success_and_failure(
    batch: list[LabelInput], params: TrainingLabelParams
) -> None:
    labels = derive_training_labels(batch, params)
    near = _by_outcome(labels, "near_success")
    if params.bands_separated:
        assert _by_outcome(labels, "failure").max() < near.min()
        assert near.max() < _by_outcome(labels, "success").min()
    # Always: at equal steps-to-go, success >= near-success >= failure, by the configured fraction.
    h = labels.horizon_steps
    for e in labels.episodes:
        to_go = np.arange(e.value_target.size - 1, -1, -1)
        offset = e.value_target.astype(np.float64) + to_go / h
        expected = {"success": 0.0, "near_success": -params.near_success_penalty}.get(
            e.outcome, -params.failure_penalty
        )
        np.testing.assert_allclose(offset, expected, atol=1e-6)


@SETTINGS
@given(batches(), label_params())
def test_indicator_human_steps_positive_and_fraction_near_target(
    batch: list[LabelInput], params: TrainingLabelParams
) -> None:
    labels = derive_training_labels(batch, params)
    human = np.concatenate([e.control_class == ControlClass.HUMAN for e in labels.episodes])
    improvement = np.concatenate([e.improvement for e in labels.episodes])
    advantage = np.concatenate([e.advantage for e in labels.episodes]).astype(np.float64)
    assert improvement.dtype == np.bool_
    assert improvement[human].all()
    # Every other step is positive exactly when its advantage is above the reported threshold.
    np.testing.assert_array_equal(improvement[~human], advantage[~human] > labels.threshold)
    population = advantage[~human]
    assert labels.non_human_steps == population.size
    if population.size == 0:
        return
    positives = int(improvement[~human].sum())
    assert labels.positive_fraction == positives / population.size
    # The closest count ties allow: within half the largest group of equal advantages.
    largest_tie = int(np.unique(population, return_counts=True)[1].max())
    assert abs(positives - params.positive_fraction * population.size) <= largest_tie / 2 + 1e-9


@SETTINGS
@given(batches(), label_params(), st.randoms(use_true_random=False))
def test_same_inputs_give_the_same_bytes(batch: list[LabelInput], params: TrainingLabelParams, rnd) -> None:
    first = _fingerprint(derive_training_labels(batch, params))
    shuffled = list(batch)
    rnd.shuffle(shuffled)
    copies = [
        LabelInput(i.episode_id, i.control_source.copy(), i.takeover_steps, i.outcome, i.rate_hz)
        for i in shuffled
    ]
    again = derive_training_labels(copies, TrainingLabelParams.from_dict(params.to_dict()))
    assert _fingerprint(again) == first


@SETTINGS
@given(label_params(), label_params())
def test_digest_names_the_parameters(a: TrainingLabelParams, b: TrainingLabelParams) -> None:
    assert (a.digest() == b.digest()) == (a == b)
    assert TrainingLabelParams.from_dict(a.to_dict()).digest() == a.digest()


@SETTINGS
@given(batches(), label_params())
def test_pre_intervention_steps_are_policy_steps_in_the_window_before_a_takeover(
    batch: list[LabelInput], params: TrainingLabelParams
) -> None:
    labels = derive_training_labels(batch, params)
    inputs = {i.episode_id: i for i in batch}
    for e in labels.episodes:
        item = inputs[e.episode_id]
        window = e.pre_window_steps
        assert window == params.pre_window_steps(item.rate_hz)
        in_window = np.zeros(item.num_steps, dtype=bool)
        for s in item.takeover_steps:
            in_window[max(0, s - window) : s] = True
        policy = item.control_source == P
        pre = e.control_class == ControlClass.PRE_INTERVENTION
        np.testing.assert_array_equal(pre, policy & in_window)
        np.testing.assert_array_equal(e.control_class[~pre], item.control_source[~pre])
