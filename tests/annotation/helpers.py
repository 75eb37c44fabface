"""Hand-built episodes with intervention artefacts, and comparisons of episodes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from takeover.storage.schema import CameraStream, ControlSource, Episode, EpisodeMeta, Event, EventKind
from takeover.storage.testing import encode_rgb_jpeg, solid_rgb

P, H, HOLD = int(ControlSource.POLICY), int(ControlSource.HUMAN), int(ControlSource.HOLD)
RAMP = int(ControlSource.RAMP)
_KIND = {
    (P, H): EventKind.TAKEOVER,
    (HOLD, H): EventKind.TAKEOVER,
    (H, P): EventKind.HANDBACK,
    (HOLD, P): EventKind.RESUME,
    (P, HOLD): EventKind.HOLD,
    (H, HOLD): EventKind.HOLD,
    (H, RAMP): EventKind.HANDBACK,
    (RAMP, P): EventKind.RAMP_END,
}


def build_episode(
    source: Sequence[int],
    *,
    dt: Sequence[float] | float = 0.05,
    action: np.ndarray | None = None,
    idle: Sequence[int] = (),
    frames: Sequence[int] | None = None,
    frame_colors: Sequence[int] | None = None,
    episode_id: str = "ep",
    extra: dict[str, object] | None = None,
) -> Episode:
    """An episode whose state integrates its actions (position = first three state components).

    ``idle`` steps get a zero motion action; ``frames`` are the steps with a camera frame and
    ``frame_colors`` their gray levels (equal levels give equal JPEG bytes: a stalled camera).
    """
    cs = np.asarray(source, dtype=np.uint8)
    n = cs.shape[0]
    steps_dt = np.full(n, dt, dtype=np.float64) if np.isscalar(dt) else np.asarray(dt, dtype=np.float64)
    ts = 100.0 + np.concatenate([[0.0], np.cumsum(steps_dt[:-1])]) if n else np.zeros(0)
    if action is None:
        phase = np.arange(n, dtype=np.float64)[:, None] * np.array([0.3, 0.2, 0.1])
        action = np.concatenate([0.4 * np.sin(phase) + 0.3, np.ones((n, 1))], axis=1).astype(np.float32)
    action = np.array(action, dtype=np.float32)
    for i in idle:
        action[i, :3] = 0.0
    pos = np.zeros((n, 3))
    for i in range(1, n):
        pos[i] = pos[i - 1] + 0.01 * action[i - 1, :3]
    state = np.concatenate([pos, np.zeros((n, 2))], axis=1).astype(np.float32)
    events = [Event(EventKind.START, 0, float(ts[0]) if n else 0.0)]
    for i in range(1, n):
        if cs[i] != cs[i - 1]:
            events.append(Event(_KIND[(int(cs[i - 1]), int(cs[i]))], i, float(ts[i]) - 0.001, "test"))
    events.append(Event(EventKind.END, n, float(ts[-1]) + 0.05 if n else 0.0))
    cams: dict[str, CameraStream] = {}
    if frames is not None:
        colors = (
            list(frame_colors) if frame_colors is not None else [(7 * i) % 250 for i in range(len(frames))]
        )
        fsteps = np.asarray(frames, dtype=np.int64)
        cams["front"] = CameraStream(
            name="front",
            frames=[encode_rgb_jpeg(solid_rgb(8, 8, (c, c, c))) for c in colors],
            timestamps=ts[fsteps] + 0.002,
            step_index=fsteps,
            height=8,
            width=8,
        )
    meta = EpisodeMeta(
        episode_id=episode_id,
        station="sim-0",
        robot="sawyer",
        task="task",
        operator="op",
        policy_id="pol",
        rate_hz=20.0,
        started_at=1.7e9,
        ended_at=1.7e9 + 1,
        success=None,
        extra=extra or {},
    )
    return Episode(meta, ts, state, action, np.full_like(action, np.nan), cs, events, cams)


def assert_episodes_equal(a: Episode, b: Episode) -> None:
    assert a.meta == b.meta
    for name in ("timestamps", "state", "action", "proposed_action", "control_source"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.events == b.events
    assert sorted(a.cameras) == sorted(b.cameras)
    for name, ca in a.cameras.items():
        cb = b.cameras[name]
        assert list(ca.frames) == list(cb.frames)
        np.testing.assert_array_equal(ca.timestamps, cb.timestamps)
        np.testing.assert_array_equal(ca.step_index, cb.step_index)


def deep_copy(ep: Episode) -> Episode:
    cams = {
        k: CameraStream(
            c.name, list(c.frames), c.timestamps.copy(), c.step_index.copy(), c.height, c.width, c.dropped
        )
        for k, c in ep.cameras.items()
    }
    return Episode(
        ep.meta,
        ep.timestamps.copy(),
        ep.state.copy(),
        ep.action.copy(),
        ep.proposed_action.copy(),
        ep.control_source.copy(),
        list(ep.events),
        cams,
    )


def freeze(ep: Episode) -> Episode:
    """Mark every input array read-only, so any write by the code under test raises."""
    for arr in (ep.timestamps, ep.state, ep.action, ep.proposed_action, ep.control_source):
        arr.flags.writeable = False
    for c in ep.cameras.values():
        c.timestamps.flags.writeable = False
        c.step_index.flags.writeable = False
    return ep
