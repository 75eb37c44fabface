"""Boundary detection and smoothing on hand-made episodes."""

from __future__ import annotations

import numpy as np
import pytest

from takeover.annotation.boundaries import BoundaryKind, find_boundaries
from takeover.annotation.params import ParamsError, SmoothingParams, load_params
from takeover.annotation.smoothing import smooth_episode
from takeover.storage.testing import make_episode

from .helpers import HOLD, RAMP, H, P, assert_episodes_equal, build_episode, deep_copy, freeze


def test_boundaries_from_control_source_and_events() -> None:
    ep = build_episode([P] * 5 + [H] * 5 + [P] * 3 + [HOLD] * 2 + [H] * 2 + [HOLD] + [P])
    kinds = [(b.kind, b.step) for b in find_boundaries(ep)]
    assert kinds == [
        (BoundaryKind.TAKEOVER, 5),
        (BoundaryKind.HANDBACK, 10),
        (BoundaryKind.HOLD, 13),
        (BoundaryKind.TAKEOVER, 15),
        (BoundaryKind.HOLD, 17),
        (BoundaryKind.RESUME, 18),
    ]
    first = find_boundaries(ep)[0]
    assert first.time == pytest.approx(ep.timestamps[5] - 0.001)  # the event's time
    assert first.reason == "test"


def test_hand_back_through_a_ramp_window() -> None:
    ep = build_episode([P] * 5 + [H] * 5 + [RAMP] * 4 + [P] * 3)
    kinds = [(b.kind, b.step) for b in find_boundaries(ep)]
    assert kinds == [(BoundaryKind.TAKEOVER, 5), (BoundaryKind.HANDBACK, 10), (BoundaryKind.RAMP_END, 14)]
    assert [c.kind for c in smooth_episode(ep).changes] == ["takeover", "handback"]


def test_reaction_pause_after_takeover_is_removed() -> None:
    # 20 Hz: 16 idle steps = 0.8 s while the operator grabs the device
    ep = freeze(build_episode([P] * 10 + [H] * 30 + [P] * 10, idle=range(10, 26), frames=list(range(50))))
    sm = smooth_episode(ep)
    ch = sm.changes[0]
    assert (ch.kind, ch.idle_steps, ch.removed_start, ch.removed_stop) == ("takeover", 16, 10, 26)
    assert ch.removed_s == pytest.approx(0.8)
    assert sm.num_steps == 50 - 16
    assert 10 not in sm.keep and 26 in sm.keep
    # later samples move earlier by the pause; the first kept step takes the boundary's time slot
    new_26 = int(np.searchsorted(sm.keep, 26))
    assert sm.timestamps[new_26] == pytest.approx(ep.timestamps[10])
    assert np.all(np.diff(sm.timestamps) > 0)
    assert sm.time_shift.max() == pytest.approx(0.8)
    # frames captured during the pause are dropped
    assert sorted(d.step for d in sm.dropped_frames if d.reason == "pause") == list(range(10, 26))
    # the takeover event moves to the first kept human step
    derived = sm.to_episode(ep)
    take = next(e for e in derived.events if e.kind == "takeover")
    assert derived.control_source[take.step] == H and derived.control_source[take.step - 1] == P


def test_a_jump_is_blended_only_within_the_window() -> None:
    n = 30
    action = np.zeros((n, 4), dtype=np.float32)
    action[:10, :3] = 0.8
    action[10:, :3] = -0.6
    ep = freeze(build_episode([P] * 10 + [H] * 20, action=action))
    params = SmoothingParams(blend_window=4)
    sm = smooth_episode(ep, params)
    ch = sm.changes[0]
    assert ch.action_jump == pytest.approx(1.4)
    assert ch.blended_steps == (10, 11, 12, 13)
    # the first step after the boundary now differs from the last before by at most half the threshold
    assert np.max(np.abs(sm.action[10, :3] - sm.action[9, :3])) <= 0.5 * params.action_jump_threshold + 1e-6
    seq = sm.action[9:15, 0]
    assert np.all(np.diff(seq) <= 1e-7)  # monotone from the policy's action to the human's
    np.testing.assert_array_equal(sm.action[14:], ep.action[14:])
    np.testing.assert_array_equal(sm.action[:10], ep.action[:10])
    np.testing.assert_array_equal(sm.action[:, 3], ep.action[:, 3])  # the gripper is not blended


def test_policy_only_episode_is_untouched() -> None:
    ep = freeze(make_episode("pol", 40, seed=3))
    before = deep_copy(ep)
    sm = smooth_episode(ep, SmoothingParams())
    assert not sm.changed and sm.changes == ()
    np.testing.assert_array_equal(sm.keep, np.arange(40))
    np.testing.assert_array_equal(sm.action, ep.action)
    np.testing.assert_array_equal(sm.timestamps, ep.timestamps)
    derived = sm.to_episode(ep)
    derived.meta.extra.pop("boundary_smoothing")
    assert_episodes_equal(derived, before)


def test_time_shift_bound_caps_the_removal() -> None:
    ep = build_episode([P] * 10 + [H] * 30, idle=range(10, 26))
    sm = smooth_episode(ep, SmoothingParams(max_time_shift_s=0.3))
    ch = sm.changes[0]
    assert ch.removed_stop - ch.removed_start == 6  # 6 x 50 ms
    assert ch.removed_s == pytest.approx(0.3)
    assert sm.time_shift.max() <= 0.3 + 1e-9
    assert any("max_time_shift_s" in n for n in ch.notes)


def test_long_pause_and_moving_robot_are_kept() -> None:
    ep = build_episode([P] * 10 + [H] * 60, idle=range(10, 50))  # 2 s > max_pause_s
    assert smooth_episode(ep).changes[0].removed_s == 0.0
    moving = build_episode([P] * 10 + [H] * 30, idle=range(10, 20))
    pos = moving.state.copy()
    pos[12:, 0] += 0.05  # something pushed the arm 5 cm during the "pause"
    moving.state = pos
    ch = smooth_episode(moving).changes[0]
    assert ch.removed_s == 0.0 and any("moved" in n for n in ch.notes)


def test_stalled_frames_near_a_boundary_are_dropped() -> None:
    frames = list(range(20))
    colors = [10 * i for i in range(20)]
    colors[11] = colors[10]  # stalled camera right after the takeover
    colors[3] = colors[2]  # far from the boundary: left alone
    ep = build_episode([P] * 10 + [H] * 10, frames=frames, frame_colors=colors)
    sm = smooth_episode(ep, SmoothingParams(frame_window=3))
    assert [(d.index, d.reason) for d in sm.dropped_frames] == [(11, "stalled")]
    assert 11 not in sm.cameras["front"].index.tolist()


def test_segment_keeps_its_last_step_and_boundaries_survive() -> None:
    ep = build_episode([P] * 5 + [H] * 4 + [P] * 5, idle=range(5, 9))
    sm = smooth_episode(ep)
    derived = sm.to_episode(ep)
    assert derived.control_source.tolist().count(H) == 1
    assert [b.kind for b in find_boundaries(derived)] == [b.kind for b in find_boundaries(ep)]


def test_params_validation_and_toml(tmp_path) -> None:
    with pytest.raises(ParamsError, match="blend_window"):
        SmoothingParams(blend_window=-1)
    with pytest.raises(ParamsError, match="twice"):
        SmoothingParams(idle_action_threshold=0.3, action_jump_threshold=0.5)
    with pytest.raises(ParamsError, match="unknown"):
        SmoothingParams.from_dict({"blend_windw": 3})
    f = tmp_path / "p.toml"
    f.write_text("[smoothing]\nblend_window = 3\nmotion_action_dims = [0, 1]\n")
    p = load_params(f)
    assert p.blend_window == 3 and p.motion_action_dims == (0, 1)
    assert p.to_dict()["motion_action_dims"] == [0, 1]
    assert SmoothingParams.from_dict(p.to_dict()) == p and p.digest() == load_params(f).digest()
    with pytest.raises(ValueError, match="motion_action_dims"):
        smooth_episode(make_episode("e", 5, action_dim=2), SmoothingParams())
