"""Action limits, watchdogs and the e-stop, in the loop against the point-mass station."""

from __future__ import annotations

import math

import numpy as np
import pytest

from takeover.app.control.inference import Proposal
from takeover.app.control.loop import ControlLoop, LoopConfig
from takeover.app.control.pacing import FakeClock
from takeover.app.control.safety import ActionLimits, SafetyConfig
from takeover.app.station.base import Observation
from takeover.storage.schema import ControlSource, EventKind
from takeover.teleop.devices import TeleopRequest
from takeover.teleop.state_machine import Request

from .test_loop import ConstantPolicy, PointStation, ScheduledDevice, Tape, make

HOLD = np.array([0, 0, 0, 1], dtype=np.float32)
LOW, HIGH = -np.ones(4), np.ones(4)


def test_not_finite_actions_are_refused() -> None:
    limits = ActionLimits(SafetyConfig(), LOW, HIGH)
    out = limits.check(np.array([np.nan, 0, 0, 0]), np.zeros(3), HOLD)
    assert out.refused and "not finite" in out.refused
    np.testing.assert_array_equal(out.action, HOLD)
    assert limits.check(np.array([0, np.inf, 0, 0]), np.zeros(3), HOLD).refused


def test_largest_step_scales_the_delta_down() -> None:
    limits = ActionLimits(SafetyConfig(ee_delta_scale=0.01, max_step_m=0.005), LOW, HIGH)
    out = limits.check(np.array([1.0, 0, 0, 0.5]), np.zeros(3), HOLD)
    assert out.clamped == ("step",)
    np.testing.assert_allclose(out.action, [0.5, 0, 0, 0.5], atol=1e-6)


def test_workspace_box_stops_the_target_at_the_wall_and_lets_it_slide() -> None:
    cfg = SafetyConfig(ee_delta_scale=0.01, z_min=0.10, z_max=0.5)
    limits = ActionLimits(cfg, LOW, HIGH)
    out = limits.check(np.array([1.0, 0, -1.0, 0]), np.array([0, 0, 0.104]), HOLD)
    assert out.clamped == ("workspace",)
    np.testing.assert_allclose(out.action[:3], [1.0, 0, -0.4], atol=1e-5)
    # Already outside (below): may stay or move back in, never further out.
    out = limits.check(np.array([0, 0, -1.0, 0]), np.array([0, 0, 0.05]), HOLD)
    np.testing.assert_allclose(out.action[:3], 0, atol=1e-6)
    out = limits.check(np.array([0, 0, 1.0, 0]), np.array([0, 0, 0.05]), HOLD)
    np.testing.assert_allclose(out.action[:3], [0, 0, 1.0], atol=1e-6)


def test_the_station_box_is_kept_too_and_must_overlap_the_configured_one() -> None:
    station_box = ((-1.0, -1.0, 0.2), (1.0, 1.0, 0.4))
    limits = ActionLimits(SafetyConfig(ee_delta_scale=0.01), LOW, HIGH, station_box)  # config unbounded
    out = limits.check(np.array([0, 0, -1.0, 0]), np.array([0, 0, 0.205]), HOLD)
    assert out.clamped == ("workspace",)
    np.testing.assert_allclose(out.action[:3], [0, 0, -0.5], atol=1e-5)  # stops at the station's floor
    both = ActionLimits(SafetyConfig(ee_delta_scale=0.01, z_max=0.3), LOW, HIGH, station_box)
    out = both.check(np.array([0, 0, 1.0, 0]), np.array([0, 0, 0.295]), HOLD)
    np.testing.assert_allclose(out.action[:3], [0, 0, 0.5], atol=1e-5)  # the configured ceiling is lower
    with pytest.raises(ValueError, match="do not overlap"):
        ActionLimits(SafetyConfig(z_min=0.5, z_max=0.9), LOW, HIGH, station_box)


def test_safety_config_is_validated() -> None:
    with pytest.raises(ValueError, match="z_min"):
        SafetyConfig(z_min=1.0, z_max=0.0)
    with pytest.raises(ValueError, match="max_step_m"):
        SafetyConfig(max_step_m=0)
    assert SafetyConfig().x_max == math.inf


def test_nan_from_the_policy_holds_at_once_with_a_reason() -> None:
    loop, tape, station, policy = make({})
    real = policy.infer

    def broken(state: np.ndarray, step: int) -> Proposal:
        answer = real(state, step)
        if step >= 8:
            answer.actions[1, 0] = np.nan
        return answer

    policy.infer = broken  # type: ignore[method-assign]
    loop.run_episode()
    [hold] = [e for e in tape.events if e.kind is EventKind.HOLD]
    assert hold.step == 8 and "not finite" in hold.reason
    assert all(s.control_source is ControlSource.HOLD for s in tape.steps[8:])
    assert np.all(np.isfinite(np.stack(station.actions)))
    assert np.all(np.stack(station.actions)[8:, :3] == 0)


def test_workspace_limit_is_an_event_when_it_starts_to_act() -> None:
    safety = SafetyConfig(ee_delta_scale=1.0, max_step_m=10.0, x_max=0.45)
    loop, tape, station, _ = make({}, safety=safety)
    loop.run_episode()
    limits = [e for e in tape.events if e.kind is EventKind.LIMIT]
    assert len(limits) == 1 and "workspace wall on x" in limits[0].reason
    assert limits[0].step == 4  # 0.1 per step from 0: the 5th step would cross 0.45
    assert station.pos[0] == pytest.approx(0.45)


def test_slow_policy_trips_the_policy_watchdog() -> None:
    loop, tape, _, policy = make({}, safety=SafetyConfig(policy_timeout_ms=50.0))
    clock = loop.clock
    assert isinstance(clock, FakeClock)
    real = policy.infer

    def slow(state: np.ndarray, step: int) -> np.ndarray:
        if step >= 12:
            clock.advance(0.2)
        return real(state, step)

    policy.infer = slow  # type: ignore[method-assign]
    loop.run_episode()
    [hold] = [e for e in tape.events if e.kind is EventKind.HOLD]
    assert hold.step == 12 and "policy chunk took 200 ms" in hold.reason
    assert all(s.control_source is ControlSource.HOLD for s in tape.steps[12:])


def test_slow_station_trips_the_station_watchdog() -> None:
    clock = FakeClock()

    class Slow(PointStation):
        def act(self, action: np.ndarray) -> Observation:
            if len(self.actions) == 6:
                self.clock.advance(0.3)
            return super().act(action)

    tape = Tape()
    loop = ControlLoop(
        Slow(clock),
        ConstantPolicy(),
        [],
        [tape],
        LoopConfig(rate_hz=50.0, max_steps=20, safety=SafetyConfig(station_timeout_ms=100.0)),
        clock=clock,
    )
    loop.run_episode()
    [hold] = [e for e in tape.events if e.kind is EventKind.HOLD]
    assert hold.step == 7 and "station act/observe took 301 ms" in hold.reason


def test_estop_is_latched_until_reset_then_held() -> None:
    clock = FakeClock()
    tape = Tape()
    station = PointStation(clock)
    device = ScheduledDevice(
        {3: TeleopRequest.TAKEOVER, 6: Request.ESTOP, 8: TeleopRequest.HANDBACK, 12: Request.RESET}, clock
    )
    loop = ControlLoop(
        station, ConstantPolicy(), [device], [tape], LoopConfig(rate_hz=50.0, max_steps=20), clock=clock
    )
    loop.run_episode()
    kinds = [(e.kind, e.step) for e in tape.events]
    assert kinds == [
        (EventKind.START, 0),
        (EventKind.TAKEOVER, 3),
        (EventKind.ESTOP, 6),
        (EventKind.RESET, 12),
        (EventKind.END, 20),
    ]
    assert loop.machine.rejected == 1  # the hand-back while e-stopped
    assert set(s.control_source for s in tape.steps[6:]) == {ControlSource.HOLD}
    assert np.all(np.stack(station.actions)[6:, :3] == 0)
