import numpy as np
import pytest

from takeover.annotation.blend import blend_weights, min_jerk
from takeover.app.control.blending import ChunkSplicer, CrossFade, SpeedEnvelope


def test_min_jerk_profile() -> None:
    assert min_jerk(0.0) == 0.0 and min_jerk(1.0) == 1.0 and min_jerk(0.5) == pytest.approx(0.5)
    w = blend_weights(10)
    # every period of a blend mixes both sources; the profile is symmetric about one half
    assert np.all(np.diff(w) > 0) and w[0] > 0.0 and w[-1] < 1.0
    np.testing.assert_allclose(w + w[::-1], 1.0)
    np.testing.assert_allclose(blend_weights(1), [0.5])
    # zero slope at both ends: the first and last increments are the smallest
    assert np.argmin(np.diff(np.concatenate([[0.0], w]))) in (0, 9)


def test_crossfade_goes_from_the_origin_to_the_live_action() -> None:
    fade = CrossFade()
    fade.start(np.array([1.0, 0.0]), 4)
    out = [fade.apply(np.array([0.0, 1.0])) for _ in range(5)]
    assert not fade.active
    x = np.array([o[0] for o in out])
    assert np.all(np.diff(x) < 0) and x[0] < 1.0 and x[3] > 0.0  # four mixed periods
    assert x[4] == 0.0  # then the live action alone
    np.testing.assert_allclose([o[0] + o[1] for o in out], 1.0, rtol=1e-6)  # convex combinations


def test_consecutive_chunks_are_spliced_without_a_jump() -> None:
    sp = ChunkSplicer(open_loop_steps=4, splice_steps=3)
    sp.push(np.zeros((8, 1), dtype=np.float32))
    out = []
    for _ in range(4):
        raw, act = sp.next()
        out.append(act[0])
    assert sp.needs_chunk
    sp.push(np.ones((8, 1), dtype=np.float32))  # a new chunk that disagrees completely
    for _ in range(4):
        raw, act = sp.next()
        assert raw[0] == 1.0  # the raw proposal is kept for the record
        out.append(act[0])
    steps = np.diff(out)
    assert np.all(steps >= 0) and steps.max() < 0.6  # a ramp over 3 actions, not a jump of 1
    assert out[-1] == 1.0


def test_splice_without_an_old_tail_blends_with_the_last_action() -> None:
    sp = ChunkSplicer(open_loop_steps=2, splice_steps=2)
    sp.push(np.full((2, 1), 2.0, dtype=np.float32))
    sp.next()
    sp.next()
    sp.push(np.zeros((2, 1), dtype=np.float32))
    first = sp.next()
    assert first is not None and 0.0 < first[1][0] < 2.0


def test_speed_envelope_holds_the_cap_through_the_blend_then_lets_it_rise() -> None:
    env = SpeedEnvelope(dims=3)
    fast = np.array([3.0, 4.0, 0.0, -1.0], dtype=np.float32)  # speed 5
    out, bound = env.apply(fast)
    assert not bound and np.array_equal(out, fast)  # inactive: unchanged
    env.start(cap=1.0, hold=3, growth=0.5)
    speeds, bounds = [], []
    for _ in range(12):
        out, bound = env.apply(fast)
        speeds.append(float(np.linalg.norm(out[:3])))
        bounds.append(bound)
        # only the magnitude changes: the direction and the gripper are the action's
        np.testing.assert_allclose(out[:3] / np.linalg.norm(out[:3]), [0.6, 0.8, 0.0], rtol=1e-6)
        assert out[3] == -1.0
    np.testing.assert_allclose(speeds[:3], 1.0, rtol=1e-6)  # held through the blend
    np.testing.assert_allclose(np.diff(speeds[2:10]), 0.5, rtol=1e-5)  # then rising by the growth
    assert speeds[-1] == pytest.approx(5.0) and bounds[:9] == [True] * 9 and not bounds[-1]


def test_speed_envelope_leaves_slow_actions_alone_and_can_be_cancelled() -> None:
    env = SpeedEnvelope(dims=3)
    env.start(cap=1.0, hold=2, growth=0.0)
    slow = np.array([0.3, 0.0, 0.4, 1.0], dtype=np.float32)
    out, bound = env.apply(slow)
    assert not bound and np.array_equal(out, slow)
    out, bound = env.apply(slow * 10)
    assert bound and np.linalg.norm(out[:3]) == pytest.approx(1.0)
    env.cancel()
    assert not env.active
    out, bound = env.apply(slow * 10)
    assert not bound and np.array_equal(out, slow * 10)
