"""An attempt's clock and what happens between attempts: held time does not count against the
limit and does not step a station that can be held still; the limit comes from the task; requests
made between attempts are refused (an e-stop and its reset excepted) and never act in the next
attempt. On the point-mass station (fake clock) and on the real Meta-World simulator."""

from __future__ import annotations

import numpy as np
import pytest

from takeover.app.control.loop import NOT_RUNNING, AttemptRefused, ControlLoop, LoopConfig
from takeover.app.control.pacing import FakeClock
from takeover.app.station.base import Observation
from takeover.storage.schema import ControlSource, EventKind
from takeover.teleop.devices import TeleopRequest
from takeover.teleop.keyboard import KeyboardTeleop
from takeover.teleop.state_machine import Mode, Request

from .test_loop import ConstantPolicy, PointStation, ScheduledDevice, Tape


class StillPointStation(PointStation):
    """The point-mass station, held still without stepping (it counts what it was asked)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.holds = 0

    def hold(self) -> Observation:
        self.holds += 1
        self.clock.advance(0.001)
        return self._obs()


def test_held_periods_keep_the_attempts_budget_and_do_not_step_the_station() -> None:
    clock = FakeClock()
    station = StillPointStation(clock)
    tape = Tape()
    device = ScheduledDevice({5: TeleopRequest.HOLD, 45: TeleopRequest.RESUME}, clock)
    config = LoopConfig(rate_hz=50.0, max_steps=30)
    loop = ControlLoop(station, ConstantPolicy(), [device], [tape], config, clock=clock, attended=True)
    result = loop.run_episode()
    held = [s for s in tape.steps if s.control_source is ControlSource.HOLD]
    assert len(held) == 40  # periods 5..44
    assert station.holds == 40 and len(station.actions) == 30  # only the counted periods stepped it
    assert result.steps == 70 and tape.end is not None and tape.end.end_reason == "limit"
    counted, limit, held_s = loop.clock_figures()
    assert (counted, limit, held_s) == pytest.approx((0.6, 0.6, 0.8))
    assert tape.end.timing["held_s"] == pytest.approx(0.8)


def test_a_station_without_hold_is_held_by_acting_and_an_unattended_hold_still_ends() -> None:
    clock = FakeClock()
    station = PointStation(clock)
    device = ScheduledDevice({3: TeleopRequest.HOLD}, clock)
    config = LoopConfig(rate_hz=50.0, max_steps=20, max_held_s=0.2)  # 10 held periods not counted
    loop = ControlLoop(station, ConstantPolicy(), [device], [Tape()], config, clock=clock, attended=True)
    result = loop.run_episode()
    assert result.steps == 30 and len(station.actions) == 30
    assert np.all(np.stack(station.actions)[3:, :3] == 0)
    # Unattended (headless), held periods count from the start: nobody would resume.
    station = PointStation(clock)
    device = ScheduledDevice({3: TeleopRequest.HOLD}, clock)
    loop = ControlLoop(station, ConstantPolicy(), [device], [Tape()], config, clock=clock)
    assert loop.run_episode().steps == 20


def test_the_limit_comes_from_the_task_unless_configured() -> None:
    assert LoopConfig(rate_hz=20.0).attempt_steps(25.0) == 500
    assert LoopConfig(rate_hz=50.0).attempt_steps(25.0) == 1250
    assert LoopConfig(rate_hz=50.0, max_steps=77).attempt_steps(25.0) == 77
    assert LoopConfig(rate_hz=50.0).attempt_steps(0.0) == 200  # the station gives none


def test_requests_between_attempts_are_refused_and_a_key_pressed_then_does_not_act() -> None:
    clock = FakeClock()
    keyboard = KeyboardTeleop(clock=clock.now)
    keyboard.connect()
    tape = Tape()
    loop = ControlLoop(
        PointStation(clock),
        ConstantPolicy(),
        [keyboard],
        [tape],
        LoopConfig(rate_hz=50.0, max_steps=10),
        clock=clock,
    )
    for request in (Request.TAKEOVER, Request.HANDBACK, Request.HOLD, Request.RESUME):
        assert loop.operator_request(request, "console") == (NOT_RUNNING, [])
    keyboard.set_keys(["T"], clock.now())  # T while idle (a key the console did not stop)
    keyboard.set_keys([], clock.now())
    loop.run_episode()
    assert [e.kind for e in tape.events] == [EventKind.START, EventKind.END]
    assert {s.control_source for s in tape.steps} == {ControlSource.POLICY}


def test_an_estop_between_attempts_latches_now_and_start_waits_for_its_reset() -> None:
    clock = FakeClock()
    tape = Tape()
    loop = ControlLoop(
        PointStation(clock), ConstantPolicy(), [], [tape], LoopConfig(rate_hz=50.0, max_steps=5), clock=clock
    )
    refused, applied = loop.operator_request(Request.ESTOP, "console")
    assert refused == "" and [tr.target for tr in applied] == [Mode.ESTOP]
    assert "e-stop is latched" in loop.start_refusal()
    with pytest.raises(AttemptRefused, match="reset it"):
        loop.run_episode()
    refused, applied = loop.operator_request(Request.RESET, "console")
    assert refused == "" and [tr.target for tr in applied] == [Mode.HOLD]
    assert loop.start_refusal() == ""
    loop.run_episode()
    assert {s.control_source for s in tape.steps} == {ControlSource.POLICY}  # not held by the reset


@pytest.mark.slow
def test_meta_world_is_not_stepped_while_held_and_runs_its_whole_task_limit() -> None:
    pytest.importorskip("metaworld")
    from takeover.app.station.metaworld_sim import (
        META_WORLD_MAX_PATH,
        MetaWorldConfig,
        MetaWorldStation,
        task_time_limit_s,
    )

    rate = 50.0
    limit = LoopConfig(rate_hz=rate).attempt_steps(task_time_limit_s("pick-place-v3"))
    assert limit == 1250 > META_WORLD_MAX_PATH
    clock = FakeClock()
    steps_at: dict[int, int] = {}

    class Watch(Tape):
        def on_step(self, step):  # type: ignore[no-untyped-def]
            super().on_step(step)
            steps_at[step.index] = station.steps

    device = ScheduledDevice({100: TeleopRequest.HOLD, 300: TeleopRequest.RESUME}, clock)
    with MetaWorldStation(MetaWorldConfig(cameras=(), rate_hz=rate, max_steps=limit)) as station:
        assert station.info.time_limit_s == 25.0
        tape = Watch()
        config = LoopConfig(rate_hz=rate, paced=False, end_on_success=False)
        loop = ControlLoop(station, ConstantPolicy(), [device], [tape], config, clock=clock, attended=True)
        result = loop.run_episode(seed=3)
        assert steps_at[100] == steps_at[299]  # the simulator did not move while held
        assert result.steps == limit + 200 and station.steps == limit  # the whole budget, past 500
        assert tape.end is not None and tape.end.end_reason == "limit"
