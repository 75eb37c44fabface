"""Properties of boundary smoothing on generated episodes with random hand-overs and artefacts."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from takeover.annotation.boundaries import change_steps, find_boundaries
from takeover.annotation.params import SmoothingParams
from takeover.annotation.smoothing import smooth_episode
from takeover.storage.schema import Episode

from .helpers import HOLD, H, P, assert_episodes_equal, build_episode, deep_copy, freeze

SETTINGS = settings(max_examples=int(__import__("os").environ.get("SMOOTH_EXAMPLES", "60")), deadline=None)


@st.composite
def episodes(draw: st.DrawFn, allow_human: bool = True) -> Episode:
    """Segments of random sources and lengths; idle runs and jumps injected after hand-overs;
    irregular step periods; a camera with random stalled frames."""
    n_seg = draw(st.integers(1, 6))
    sources = [draw(st.sampled_from([P, HOLD]))]
    for _ in range(n_seg - 1):
        options = [s for s in ((P, H, HOLD) if allow_human else (P, HOLD)) if s != sources[-1]]
        sources.append(draw(st.sampled_from(options)))
    lengths = [draw(st.integers(1, 14)) for _ in sources]
    cs = np.repeat(sources, lengths).tolist()
    n = len(cs)
    dt = draw(st.lists(st.floats(0.03, 0.07), min_size=n, max_size=n))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    action = np.concatenate([rng.uniform(-1, 1, (n, 3)), rng.choice([-1.0, 1.0], (n, 1))], axis=1)
    idle: list[int] = []
    start = 0
    for src, length in zip(sources, lengths, strict=True):
        if start > 0 and draw(st.booleans()):
            k = draw(st.integers(0, length))
            idle += list(range(start, start + k))
        if start > 0 and draw(st.booleans()):  # a jump: the new segment starts far from the last action
            action[start, :3] = -np.sign(action[start - 1, :3] + 1e-3) * draw(st.floats(0.5, 1.0))
        start += length
        del src
    frame_steps = sorted(set(draw(st.lists(st.integers(0, n - 1), max_size=n))))
    colors = [draw(st.integers(0, 3)) * 60 for _ in frame_steps]  # few colors: many stalled frames
    params_extra = {"boundary_smoothing": {"time_shift_s": 0.0}} if draw(st.booleans()) else None
    return build_episode(
        cs, dt=dt, action=action, idle=idle, frames=frame_steps, frame_colors=colors, extra=params_extra
    )


@st.composite
def params(draw: st.DrawFn) -> SmoothingParams:
    idle = draw(st.sampled_from([0.0, 0.02, 0.1]))
    return SmoothingParams(
        idle_action_threshold=idle,
        idle_position_threshold=draw(st.sampled_from([0.0, 0.005, 1.0])),
        max_pause_s=draw(st.sampled_from([0.1, 0.5, 1.5, 10.0])),
        action_jump_threshold=draw(st.sampled_from([0.3, 0.5, 1.2])),
        blend_window=draw(st.integers(0, 6)),
        blend_profile=draw(st.sampled_from(["minimum_jerk", "linear"])),
        frame_window=draw(st.integers(0, 6)),
        max_time_shift_s=draw(st.sampled_from([0.0, 0.1, 0.35, 3.0])),
        pause_kinds=draw(st.sampled_from([("takeover",), ("takeover", "handback"), ()])),
    )


@SETTINGS
@given(episodes(), params())
def test_raw_data_is_never_changed(ep: Episode, p: SmoothingParams) -> None:
    before = deep_copy(ep)
    smooth_episode(freeze(ep), p)  # read-only arrays: any write raises
    assert_episodes_equal(ep, before)


@SETTINGS
@given(episodes(), params())
def test_deterministic(ep: Episode, p: SmoothingParams) -> None:
    a, b = smooth_episode(ep, p), smooth_episode(deep_copy(ep), p)
    assert_episodes_equal(a.to_episode(ep), b.to_episode(ep))
    assert a.changes == b.changes and a.dropped_frames == b.dropped_frames


@SETTINGS
@given(episodes(), params())
def test_idempotent(ep: Episode, p: SmoothingParams) -> None:
    once = smooth_episode(ep, p).to_episode(ep)
    again = smooth_episode(once, p)
    assert not again.changed, again.changes
    assert_episodes_equal(again.to_episode(once), once)


@SETTINGS
@given(episodes(), params())
def test_boundaries_preserved(ep: Episode, p: SmoothingParams) -> None:
    sm = smooth_episode(ep, p)
    out = sm.to_episode(ep)
    raw_b, new_b = find_boundaries(ep), find_boundaries(out)
    assert [(b.kind, b.before, b.after) for b in new_b] == [(b.kind, b.before, b.after) for b in raw_b]
    changes = change_steps(ep.control_source).tolist()
    ends = [*changes[1:], ep.num_steps]
    for rb, nb in zip(raw_b, new_b, strict=True):
        # mapped through the index: the new boundary is the raw boundary, or the first step kept
        # after a removed pause, inside the same raw segment
        kept = int(sm.keep[nb.step])
        assert rb.step <= kept < ends[changes.index(rb.step)]
    for ev in out.events:
        assert 0 <= ev.step <= out.num_steps
    out.validate()


@SETTINGS
@given(episodes(), params())
def test_no_sample_moves_more_than_the_bound(ep: Episode, p: SmoothingParams) -> None:
    sm = smooth_episode(ep, p)
    bound = p.max_time_shift_s + 1e-9
    moved = ep.timestamps[sm.keep] - sm.timestamps
    assert np.all(moved >= -1e-12) and np.all(moved <= bound)
    assert np.all(np.diff(sm.timestamps) > 0)
    for name, sel in sm.cameras.items():
        raw_t = ep.cameras[name].timestamps[sel.index]
        assert np.all(raw_t - sel.timestamps <= bound) and np.all(raw_t - sel.timestamps >= -1e-12)
    raw_ev = {(e.kind, e.reason, i): e.t for i, e in enumerate(ep.events)}
    for i, e in enumerate(sm.events):
        assert 0.0 <= raw_ev[(e.kind, e.reason, i)] - e.t <= bound
    # smoothing the derived episode again respects the bound relative to the raw recording
    once = sm.to_episode(ep)
    twice = smooth_episode(once, p)
    assert twice.total_time_shift_s <= bound


@SETTINGS
@given(episodes(allow_human=False), params())
def test_policy_only_episodes_untouched(ep: Episode, p: SmoothingParams) -> None:
    sm = smooth_episode(ep, p)
    assert not sm.changed and sm.changes == ()
    out = sm.to_episode(ep)
    out.meta.extra.pop("boundary_smoothing")
    ep.meta.extra.pop("boundary_smoothing", None)
    out.meta.extra.update(ep.meta.extra)
    assert_episodes_equal(out, ep)
