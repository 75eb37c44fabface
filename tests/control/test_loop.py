"""The control loop against a small point-mass station (no simulator) on a fake clock."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from takeover.annotation.blend import blend_weights
from takeover.app.control.inference import PolicyUnavailable, Proposal
from takeover.app.control.loop import ControlLoop, LoopConfig
from takeover.app.control.pacing import FakeClock
from takeover.app.control.safety import SafetyConfig
from takeover.app.station.base import Observation, Station, StationInfo
from takeover.recorder.records import EpisodeEnd, EpisodeStart, StepRecord
from takeover.storage.schema import ControlSource, Event, EventKind
from takeover.teleop.devices import TeleopCommand, TeleopDevice, TeleopRequest


class PointStation(Station):
    """A point that moves by the commanded delta; success when it reaches x >= goal."""

    def __init__(self, clock: FakeClock, goal: float = 1e9) -> None:
        self.clock = clock
        self.goal = goal
        self.pos = np.zeros(3, dtype=np.float32)
        self.actions: list[np.ndarray] = []

    def connect(self) -> None:
        pass

    def close(self) -> None:
        pass

    @property
    def info(self) -> StationInfo:
        return StationInfo("point", "point", "reach", 4, 3, (), 50.0, (-1.0,) * 4, (1.0,) * 4)

    def _obs(self) -> Observation:
        return Observation(
            self.clock.now(), self.pos.copy(), self.pos.copy(), success=bool(self.pos[0] >= self.goal)
        )

    def reset(self, seed: int | None = None) -> Observation:
        self.pos[:] = 0
        return self._obs()

    def act(self, action: np.ndarray) -> Observation:
        self.actions.append(action.copy())
        self.clock.advance(0.001)
        self.pos += action[:3]
        return self._obs()


class ConstantPolicy:
    policy_id = "constant"

    def __init__(self) -> None:
        self.calls = 0
        self.fail_after: int | None = None
        self.extras: dict[str, np.ndarray] = {}

    def infer(self, state: np.ndarray, step: int) -> Proposal:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise PolicyUnavailable("gone")
        return Proposal(step, np.tile(np.array([0.1, 0.0, 0.0, -1.0], dtype=np.float32), (4, 1)), self.extras)


class ScheduledDevice(TeleopDevice):
    """Asks for transitions at given loop periods and pushes +y while the human drives."""

    name = "schedule"

    def __init__(self, schedule: dict[int, TeleopRequest], clock: FakeClock) -> None:
        self.schedule = schedule
        self.clock = clock
        self.reads = 0

    def connect(self) -> None:
        pass

    def close(self) -> None:
        pass

    def read(self) -> TeleopCommand:
        req = self.schedule.get(self.reads)
        self.reads += 1
        twist = np.array([0, 0.5, 0, 0, 0, 0], dtype=np.float32)
        return TeleopCommand(self.clock.now(), twist, 1.0, (req,) if req else (), True, True)


class Tape:
    def __init__(self) -> None:
        self.steps: list[StepRecord] = []
        self.events: list[Event] = []
        self.end: EpisodeEnd | None = None

    def on_episode_start(self, start: EpisodeStart) -> None:
        self.start = start

    def on_step(self, step: StepRecord) -> None:
        self.steps.append(step)

    def on_event(self, event: Event) -> None:
        self.events.append(event)

    def on_episode_end(self, end: EpisodeEnd) -> None:
        self.end = end


def make(
    schedule: dict[int, TeleopRequest], **cfg: Any
) -> tuple[ControlLoop, Tape, PointStation, ConstantPolicy]:
    clock = FakeClock()
    station = PointStation(clock)
    tape = Tape()
    policy = ConstantPolicy()
    loop = ControlLoop(
        station,
        policy,
        [ScheduledDevice(schedule, clock)],
        [tape],
        LoopConfig(rate_hz=50.0, max_steps=30, **cfg),
        clock=clock,
    )
    return loop, tape, station, policy


def test_takeover_and_handback_are_recorded_at_the_steps_they_happened() -> None:
    loop, tape, station, _ = make({5: TeleopRequest.TAKEOVER, 12: TeleopRequest.HANDBACK})
    result = loop.run_episode(seed=0)
    assert result.steps == 30
    ramp = loop.config.ramp_steps
    kinds = [(e.kind, e.step) for e in tape.events]
    assert kinds == [
        (EventKind.START, 0),
        (EventKind.TAKEOVER, 5),
        (EventKind.HANDBACK, 12),
        (EventKind.RAMP_END, 12 + ramp),
        (EventKind.END, 30),
    ]
    sources = [s.control_source for s in tape.steps]
    assert sources == (
        [ControlSource.POLICY] * 5
        + [ControlSource.HUMAN] * 7
        + [ControlSource.RAMP] * ramp
        + [ControlSource.POLICY] * (18 - ramp)
    )
    executed = np.stack([s.action for s in tape.steps])
    np.testing.assert_array_equal(np.stack(station.actions), executed)
    # The human's motion (+y) replaced the policy's (+x) over the takeover blend, then alone.
    blend = loop.config.takeover_blend_steps
    assert np.all(executed[5:12, 1] > 0)
    assert np.all(executed[5 + blend : 12, 0] == 0) and np.all(executed[5 + blend : 12, 1] == 0.5)
    assert np.all(np.diff(executed[4 : 5 + blend, 0]) < 0)  # +x fades out
    # The policy's motion is blended back in over the ramp: monotone, no jump, then the policy alone.
    np.testing.assert_allclose(executed[:5, :3], [[0.1, 0, 0]] * 5)
    assert np.all(np.diff(executed[11 : 12 + ramp, 1]) <= 0) and np.all(
        np.diff(executed[11 : 12 + ramp, 0]) >= 0
    )
    assert np.max(np.abs(np.diff(executed[11 : 12 + ramp + 1, :3], axis=0))) < 0.5 / ramp * 2
    assert np.all(executed[12 : 12 + ramp, 1] > 0)  # every period of the ramp mixes both
    np.testing.assert_allclose(executed[12 + ramp :, :3], [[0.1, 0, 0]] * (18 - ramp), atol=1e-6)


# The point station moves by the delta itself: one metre per unit.
POINT_SCALE = SafetyConfig(ee_delta_scale=1.0, max_step_m=2.0)


class FastPolicy(ConstantPolicy):
    def infer(self, state: np.ndarray, step: int) -> Proposal:
        self.calls += 1
        return Proposal(step, np.tile(np.array([0.9, 0.0, 0.0, -1.0], dtype=np.float32), (4, 1)))


def handback_run(
    device: type[ScheduledDevice] = ScheduledDevice, max_steps: int = 80, **cfg: Any
) -> tuple[ControlLoop, Tape, np.ndarray]:
    """The operator takes over at period 2 and hands back at 40; the fast policy wants 0.9."""
    clock = FakeClock()
    tape = Tape()
    loop = ControlLoop(
        PointStation(clock),
        FastPolicy(),
        [device({2: TeleopRequest.TAKEOVER, 40: TeleopRequest.HANDBACK}, clock)],
        [tape],
        LoopConfig(rate_hz=50.0, max_steps=max_steps, safety=POINT_SCALE, **cfg),
        clock=clock,
    )
    loop.run_episode()
    speed = np.linalg.norm(np.stack([s.action for s in tape.steps])[:, :3], axis=1)
    return loop, tape, speed


def test_handback_is_never_faster_than_the_operator_was_then_accelerates_to_the_policy() -> None:
    """The operator drove at 0.5 per period for more than half a second; the policy wants 0.9.
    Through the blend the commanded target moves no faster than 0.5, then the cap rises to the
    policy's speed and RAMP ends."""
    loop, tape, speed = handback_run()
    ramp = loop.config.ramp_steps
    events = {e.kind: e.step for e in tape.events}
    assert events[EventKind.HANDBACK] == 40
    ramp_end = events[EventKind.RAMP_END]
    assert np.all(speed[40 : 40 + ramp] <= 0.5 + 1e-6)  # the blend: capped at the operator's speed
    rising = speed[40 + ramp : ramp_end]
    assert len(rising) > 0 and np.all(np.diff(rising) > 0)  # then accelerating, not jumping
    assert np.max(np.diff(speed[40:])) <= 0.5 / ramp + 1e-6
    np.testing.assert_allclose(speed[ramp_end:], 0.9, rtol=1e-6)
    sources = [s.control_source for s in tape.steps]
    assert sources[40:ramp_end] == [ControlSource.RAMP] * (ramp_end - 40)


class RestingDevice(ScheduledDevice):
    """Takes over and hands back on schedule, but never moves the robot."""

    def read(self) -> TeleopCommand:
        cmd = super().read()
        return TeleopCommand(cmd.t, np.zeros(6, dtype=np.float32), 1.0, cmd.requests, True, True)


def test_handback_from_a_resting_operator_starts_moving_during_the_blend() -> None:
    """An operator who let go before handing back: the blend is capped at the floor (an eighth of
    the largest step), not at standstill, and the speed rises smoothly from zero."""
    loop, tape, speed = handback_run(RestingDevice, max_steps=100)
    ramp = loop.config.ramp_steps
    floor = POINT_SCALE.max_step_m / POINT_SCALE.ee_delta_scale / 8.0
    assert np.all(speed[30:40] == 0.0)  # resting
    blend = speed[40 : 40 + ramp]
    assert np.all(blend > 0.0) and np.all(blend <= floor + 1e-6) and np.all(np.diff(blend) >= -1e-6)
    # no jump: within the blend no steeper than the min-jerk weights, then rising by floor / ramp
    assert np.max(np.diff(speed[39 : 40 + ramp])) <= 0.9 * np.max(np.diff(blend_weights(ramp))) + 1e-6
    assert np.max(np.diff(speed[40 + ramp - 1 :])) <= floor / ramp + 1e-6
    ramp_end = {e.kind: e.step for e in tape.events}[EventKind.RAMP_END]
    np.testing.assert_allclose(speed[ramp_end:], 0.9, rtol=1e-6)


class QuickReturnDevice(ScheduledDevice):
    """Pushes +y slowly (0.2) until period 45, then fast (1.0): faster than the hand-back cap."""

    def read(self) -> TeleopCommand:
        cmd = super().read()
        twist = np.array([0, 0.2 if self.reads <= 45 else 1.0, 0, 0, 0, 0], np.float32)
        return TeleopCommand(cmd.t, twist, 1.0, cmd.requests, True, True)


def test_a_takeover_during_the_hand_back_cap_is_not_capped() -> None:
    """The cap belongs to the hand-back: taking over again in RAMP gives the human full speed."""
    clock = FakeClock()
    tape = Tape()
    device = QuickReturnDevice(
        {2: TeleopRequest.TAKEOVER, 40: TeleopRequest.HANDBACK, 45: TeleopRequest.TAKEOVER}, clock
    )
    loop = ControlLoop(
        PointStation(clock),
        FastPolicy(),
        [device],
        [tape],
        LoopConfig(rate_hz=50.0, max_steps=80, safety=POINT_SCALE),
        clock=clock,
    )
    loop.run_episode()
    kinds = [(e.kind, e.step) for e in tape.events if e.kind is not EventKind.START]
    assert kinds[:3] == [(EventKind.TAKEOVER, 2), (EventKind.HANDBACK, 40), (EventKind.TAKEOVER, 45)]
    executed = np.stack([s.action for s in tape.steps])
    speed = np.linalg.norm(executed[:, :3], axis=1)
    assert np.all(speed[40:45] <= 0.25 + 1e-6)  # the hand-back was capped (at the floor)...
    blend = loop.config.takeover_blend_steps
    # ...the human who takes over again is not
    np.testing.assert_allclose(executed[45 + blend :, :3], [[0.0, 1.0, 0.0]] * (80 - 45 - blend), atol=1e-6)


def test_handback_speed_cap_can_be_turned_off() -> None:
    loop, tape, speed = handback_run(handback_speed_cap=False)
    ramp = loop.config.ramp_steps
    assert {e.kind: e.step for e in tape.events}[EventKind.RAMP_END] == 40 + ramp
    assert speed[40 + ramp - 1] > 0.5  # the plain blend goes above the operator's speed


def test_without_blends_control_changes_hands_at_once() -> None:
    loop, tape, _, _ = make(
        {5: TeleopRequest.TAKEOVER, 12: TeleopRequest.HANDBACK}, ramp_steps=0, takeover_blend_steps=0
    )
    loop.run_episode()
    assert [e.kind for e in tape.events] == [
        EventKind.START,
        EventKind.TAKEOVER,
        EventKind.HANDBACK,
        EventKind.END,
    ]
    executed = np.stack([s.action for s in tape.steps])
    assert np.all(executed[5:12, 0] == 0) and np.all(executed[5:12, 1] == 0.5)
    assert np.all(executed[12:, 1] == 0) and np.all(executed[12:, 0] > 0)


def test_policy_proposal_is_recorded_while_the_human_drives() -> None:
    loop, tape, _, policy = make({2: TeleopRequest.TAKEOVER})
    loop.run_episode()
    proposed = np.stack([s.proposed_action for s in tape.steps])
    assert np.all(np.isfinite(proposed))
    assert np.allclose(proposed[:, 0], 0.1)
    assert policy.calls == 30 // 4 + 1  # a new chunk every open_loop_steps periods


def test_timestamps_come_from_the_station_and_are_increasing() -> None:
    loop, tape, _, _ = make({})
    loop.run_episode()
    t = np.array([s.t for s in tape.steps])
    assert np.all(np.diff(t) > 0)
    assert all(s.period_error == 0.0 for s in tape.steps)  # the fake clock is never late
    # The first observation comes from reset(), the others from act() 1 ms into each 20 ms period:
    # the stamps say when the station produced each sample, not index / rate.
    assert t[1] - t[0] == pytest.approx(0.001)
    assert np.allclose(np.diff(t[1:]), 0.02)


def test_policy_failure_holds_the_robot_and_says_why() -> None:
    loop, tape, station, policy = make({})
    policy.fail_after = 2
    loop.run_episode()
    hold = [e for e in tape.events if e.kind is EventKind.HOLD]
    assert len(hold) == 1 and "policy unavailable" in hold[0].reason
    first_held = hold[0].step
    assert all(s.control_source is ControlSource.HOLD for s in tape.steps[first_held:])
    assert np.all(np.stack(station.actions)[first_held:, :3] == 0)


def test_stop_request_ends_the_attempt_with_the_operators_outcome() -> None:
    loop, tape, _, _ = make({})
    loop.control.request_stop(outcome="failure")
    result = loop.run_episode()
    assert result.steps == 1 and result.outcome == "failure"
    assert tape.end is not None and tape.end.outcome == "failure"


def test_loop_config_is_validated() -> None:
    with pytest.raises(ValueError, match="max_steps"):
        LoopConfig(max_steps=-1)


def test_an_overrun_is_recorded_at_the_step_it_delayed() -> None:
    loop, tape, station, _ = make({})
    original = station.act

    def slow_once(action: np.ndarray) -> Observation:
        if len(station.actions) == 10:
            station.clock.advance(0.05)  # 2.5 periods inside act
        return original(action)

    station.act = slow_once  # type: ignore[method-assign]
    result = loop.run_episode()
    late = [(s.index, s.period_error) for s in tape.steps if s.period_error]
    assert len(late) == 1 and late[0][0] == 11
    assert late[0][1] == pytest.approx(0.051 - 0.02, abs=1e-6)  # started this much after its deadline
    assert result.timing["overruns"] == 1


def test_extra_policy_outputs_reach_the_observers_with_their_chunk() -> None:
    loop, tape, _, policy = make({})
    policy.extras = {"value": np.array([0.25], dtype=np.float32)}  # type: ignore[attr-defined]
    loop.run_episode()
    with_extras = [s.index for s in tape.steps if s.extras]
    assert with_extras == list(range(0, 30, 4))  # one per chunk (open_loop_steps = 4)
    assert float(tape.steps[4].extras["value"][0]) == 0.25
