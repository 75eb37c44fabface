"""Derived training labels on small hand-built episodes: exact figures, recorded value streams,
parameter files."""

from __future__ import annotations

import numpy as np
import pytest

from takeover.annotation.param_files import ParamsError
from takeover.annotation.training_labels import (
    ControlClass,
    LabelInput,
    choose_threshold,
    derive_training_labels,
    label_input,
)
from takeover.annotation.training_params import TrainingLabelParams
from takeover.storage.schema import TimedStream

from .helpers import HOLD, RAMP, H, P, build_episode


def _input(episode_id: str, cs: list[int], outcome: str, value: np.ndarray | None = None) -> LabelInput:
    takeovers = tuple(i for i in range(1, len(cs)) if cs[i] == H and cs[i - 1] != H)
    arr = np.asarray(cs, dtype=np.uint8)
    return LabelInput(episode_id, arr, takeovers, outcome, 20.0, value)


def test_classes_of_an_episode_with_a_takeover_a_ramp_and_a_hold() -> None:
    ep = build_episode([P] * 6 + [HOLD] * 2 + [H] * 3 + [RAMP] * 2 + [P] * 3)
    params = TrainingLabelParams(pre_window=0.25)  # 5 steps at 20 Hz
    labels = derive_training_labels([label_input(ep, "success", params)], params)
    e = labels.episodes[0]
    assert e.pre_window_steps == 5
    # Steps 3..7 precede the takeover at 8: the policy steps 3..5 are pre-intervention, the held
    # steps 6..7 stay held.
    assert e.control_class.tolist() == [0, 0, 0, 4, 4, 4, 2, 2, 1, 1, 1, 3, 3, 0, 0, 0]
    assert ControlClass(int(e.control_class[3])) is ControlClass.PRE_INTERVENTION


def test_value_targets_and_baseline_of_a_small_batch() -> None:
    params = TrainingLabelParams(failure_penalty=2.0, near_success_fraction=0.5)
    batch = [
        _input("a", [P] * 5, "success"),
        _input("b", [P] * 3, "near_success"),
        _input("c", [P] * 5, "failure"),
    ]
    labels = derive_training_labels(batch, params)
    assert labels.horizon_steps == 5
    a, b, c = labels.episodes
    np.testing.assert_allclose(a.value_target, [-0.8, -0.6, -0.4, -0.2, 0.0], rtol=1e-6)
    np.testing.assert_allclose(b.value_target, [-1.4, -1.2, -1.0], rtol=1e-6)
    np.testing.assert_allclose(c.value_target, [-2.8, -2.6, -2.4, -2.2, -2.0], rtol=1e-6)
    # The baseline averages the three episodes at equal progress: at the start (-0.8-1.4-2.8)/3,
    # at the end (0-1-2)/3.
    assert labels.baseline[0] == pytest.approx(-5.0 / 3) and labels.baseline[-1] == pytest.approx(-1.0)
    np.testing.assert_allclose(a.value_estimate, np.linspace(-5.0 / 3, -1.0, 5), rtol=1e-6)
    # To the end of the episode: advantage = target - estimate.
    np.testing.assert_allclose(a.advantage, a.value_target - a.value_estimate, rtol=1e-6)
    assert {e.value_source for e in labels.episodes} == {"baseline"}


def test_n_step_advantage() -> None:
    params = TrainingLabelParams(advantage_lookahead=2)
    labels = derive_training_labels(
        [_input("a", [P] * 6, "success"), _input("b", [P] * 4, "failure")], params
    )
    a = labels.episodes[0]
    v, est = a.value_target.astype(np.float64), a.value_estimate.astype(np.float64)
    expected = np.concatenate([v[:4] - v[2:] + est[2:] - est[:4], v[4:] - est[4:]])
    np.testing.assert_allclose(a.advantage, expected, rtol=1e-5, atol=1e-6)


def test_recorded_value_stream_is_the_estimate_where_an_episode_has_it() -> None:
    params = TrainingLabelParams(value_source="policy.value", positive_fraction=0.5)
    with_stream = build_episode([P] * 8, episode_id="with")
    ts = with_stream.timestamps
    # Samples at steps 0, 4 (and one slightly after step 6): each step takes the latest at or before it.
    with_stream.streams["policy.value"] = TimedStream(
        np.array([ts[0], ts[4], ts[6] + 0.01]), np.array([[-0.9], [-0.5], [-0.1]], dtype=np.float32)
    )
    without = build_episode([P] * 8, episode_id="without")
    inputs = [label_input(with_stream, "success", params), label_input(without, "failure", params)]
    labels = derive_training_labels(inputs, params)
    assert labels.value_sources == {"baseline": 1, "policy.value": 1}
    w = labels.episodes[0]
    assert w.value_source == "policy.value"
    np.testing.assert_allclose(w.value_estimate, [-0.9] * 4 + [-0.5] * 3 + [-0.1], rtol=1e-6)
    assert labels.episodes[1].value_source == "baseline"
    bad = build_episode([P] * 4, episode_id="bad")
    bad.streams["policy.value"] = TimedStream(bad.timestamps[:2].copy(), np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="one number per sample"):
        label_input(bad, "success", params)


def test_threshold_with_ties_and_edges() -> None:
    values = np.array([0.0, 1.0, 1.0, 1.0, 2.0], dtype=np.float32)
    assert choose_threshold(values, 0.2) == pytest.approx(1.5)  # one of five above
    assert choose_threshold(values, 0.5) == pytest.approx(1.5)  # 4 or 1 above tie for 2.5: fewer
    assert (values > choose_threshold(values, 1.0)).all()
    assert not (values > choose_threshold(values, 0.0)).any()
    assert choose_threshold(np.zeros(0), 0.3) == 0.0


def test_only_human_steps_gives_no_population() -> None:
    labels = derive_training_labels([_input("a", [H] * 4, "failure")], TrainingLabelParams())
    assert labels.non_human_steps == 0 and labels.positive_fraction == 0.0
    assert labels.episodes[0].improvement.all()


def test_refusals() -> None:
    with pytest.raises(ValueError, match="longer than the horizon"):
        derive_training_labels([_input("a", [P] * 12, "success")], TrainingLabelParams(horizon_steps=10))
    with pytest.raises(ValueError, match="outcome must be one of"):
        derive_training_labels([_input("a", [P] * 3, "unknown")], TrainingLabelParams())
    with pytest.raises(ValueError, match="once"):
        derive_training_labels([_input("a", [P] * 3, "success")] * 2, TrainingLabelParams())
    with pytest.raises(ValueError, match="at least one"):
        derive_training_labels([], TrainingLabelParams())


def test_params_validation_and_toml(tmp_path) -> None:
    with pytest.raises(ParamsError, match="failure_penalty"):
        TrainingLabelParams(failure_penalty=0.5)
    with pytest.raises(ParamsError, match="whole number of steps"):
        TrainingLabelParams(pre_window=2.5, pre_window_unit="steps")
    with pytest.raises(ParamsError, match="pre_window_unit"):
        TrainingLabelParams(pre_window_unit="ms")
    with pytest.raises(ParamsError, match="positive_fraction"):
        TrainingLabelParams(positive_fraction=1.5)
    with pytest.raises(ParamsError, match="version"):
        TrainingLabelParams(version=0)
    with pytest.raises(ParamsError, match="unknown training_labels parameter"):
        TrainingLabelParams.from_dict({"pre_windw": 3})
    f = tmp_path / "labels.toml"
    f.write_text(
        '[training_labels]\npre_window = 12\npre_window_unit = "steps"\nvalue_source = "policy.value"\n'
    )
    p = TrainingLabelParams.load(f)
    assert p.pre_window_steps(20.0) == 12 and p.value_source == "policy.value"
    assert p.digest() != TrainingLabelParams().digest()
    assert TrainingLabelParams(pre_window=0.26).pre_window_steps(50.0) == 13
    f.write_text("pre_window = [1]\n")
    with pytest.raises(ParamsError, match=str(f)):
        TrainingLabelParams.load(f)
