"""A SpaceMouse takeover through the whole stack below the station: report bytes on a fake HID
transport -> real pyspacemouse decoding -> SpaceMouseTeleop -> state machine -> control loop."""

from __future__ import annotations

import numpy as np

from takeover.app.control.loop import ControlLoop, LoopConfig
from takeover.app.control.pacing import FakeClock
from takeover.app.control.safety import SafetyConfig
from takeover.storage.schema import ControlSource, EventKind
from takeover.teleop.devices import TeleopCommand, TeleopRequest
from takeover.teleop.spacemouse import SpaceMouseConfig, SpaceMouseTeleop
from takeover.teleop.testing import SpaceMouseReports, install_fake_hid

from .test_loop import ConstantPolicy, PointStation, Tape
from .test_loop import ScheduledDevice as ScheduledDeviceBase


class Scripted:
    """Pushes report bytes into the fake device at given loop periods (an observer hook)."""

    def __init__(self, device: object, plan: dict[int, list[bytes]]) -> None:
        self.device = device
        self.plan = plan

    def on_episode_start(self, start: object) -> None:
        self.device.push(*self.plan.get(0, []))  # type: ignore[attr-defined]

    def on_step(self, step: object) -> None:
        index = step.index + 1  # type: ignore[attr-defined]
        if index in self.plan:
            self.device.push(*self.plan[index])  # type: ignore[attr-defined]

    def on_event(self, event: object) -> None:
        pass

    def on_episode_end(self, end: object) -> None:
        pass


def test_spacemouse_motion_takes_over_and_button_hands_back() -> None:
    reports = SpaceMouseReports("SpaceMouseCompact")
    dev = reports.device()
    clock = FakeClock()
    station = PointStation(clock)
    tape = Tape()
    plan = {
        6: [reports.motion(y=0.8)],  # the operator pushes the cap: takeover at step 6
        15: [reports.motion()],  # lets go
        18: [reports.buttons(1), reports.release()],  # presses the hand-back button
    }
    with install_fake_hid(None, [dev]), SpaceMouseTeleop(SpaceMouseConfig(), clock=clock.now) as sm:
        loop = ControlLoop(
            station,
            ConstantPolicy(),
            [sm],
            [Scripted(dev, plan), tape],
            LoopConfig(rate_hz=50.0, max_steps=25),
            clock=clock,
        )
        loop.run_episode()
    events = [(e.kind, e.step) for e in tape.events if e.kind in (EventKind.TAKEOVER, EventKind.HANDBACK)]
    assert events == [(EventKind.TAKEOVER, 6), (EventKind.HANDBACK, 18)]  # within the same period
    sources = [s.control_source for s in tape.steps]
    assert sources[6:18] == [ControlSource.HUMAN] * 12
    executed = np.stack([s.action for s in tape.steps])
    assert 0 < executed[6, 1] < executed[7, 1]  # the takeover blend: no jump in the commanded velocity
    assert np.all(executed[7:15, 1] > 0.5)  # the cap's +y drove the robot
    assert np.all(executed[15:18, :3] == 0)  # released: the robot stays put while the human has it


class Unplug(Scripted):
    """Also pulls the cable at one period and plugs it back in at another."""

    def __init__(self, device: object, plan: dict[int, list[bytes]], unplug: int, replug: int) -> None:
        super().__init__(device, plan)
        self.unplug, self.replug = unplug, replug

    def on_step(self, step: object) -> None:
        index = step.index + 1  # type: ignore[attr-defined]
        if index == self.unplug:
            self.device.unplug()  # type: ignore[attr-defined]
        if index == self.replug:
            self.device.replug()  # type: ignore[attr-defined]
        super().on_step(step)


def test_unplug_during_takeover_holds_within_the_period_and_the_device_comes_back() -> None:
    reports = SpaceMouseReports("SpaceMouseCompact")
    dev = reports.device()
    clock = FakeClock()
    station = PointStation(clock)
    tape = Tape()
    plan = {4: [reports.motion(y=0.8)], 30: [reports.motion(x=0.5)]}
    observer = Unplug(dev, plan, unplug=10, replug=20)
    config = SpaceMouseConfig(reopen_interval_s=0.1)
    with install_fake_hid(None, [dev]), SpaceMouseTeleop(config, clock=clock.now) as sm:
        loop = ControlLoop(
            station,
            ConstantPolicy(),
            [sm],
            [observer, tape],
            LoopConfig(rate_hz=50.0, max_steps=40),
            clock=clock,
        )
        loop.run_episode()
        assert sm.connected  # reopened after the replug
    holds = [e for e in tape.events if e.kind is EventKind.HOLD]
    assert len(holds) == 1
    assert holds[0].step == 10  # the period whose read failed is already held
    assert "spacemouse disconnected" in holds[0].reason and "device lost" in holds[0].reason
    sources = [s.control_source for s in tape.steps]
    assert sources[4:10] == [ControlSource.HUMAN] * 6
    assert set(sources[10:30]) == {ControlSource.HOLD}
    executed = np.stack([s.action for s in tape.steps])
    assert np.all(executed[10:30, :3] == 0)
    # Once back, touching the cap takes over from HOLD.
    takeovers = [e.step for e in tape.events if e.kind is EventKind.TAKEOVER]
    assert takeovers == [4, 30]


def test_stale_teleop_input_holds_the_robot() -> None:
    clock = FakeClock()

    class Frozen(ScheduledDeviceBase):
        def read(self) -> TeleopCommand:
            cmd = super().read()
            if self.reads > 8:  # samples stop being refreshed (a remote device that went quiet)
                return TeleopCommand(0.16, cmd.twist, None, cmd.requests, True, True)
            return cmd

    station = PointStation(clock)
    tape = Tape()
    loop = ControlLoop(
        station,
        ConstantPolicy(),
        [Frozen({3: TeleopRequest.TAKEOVER}, clock)],
        [tape],
        LoopConfig(rate_hz=50.0, max_steps=40, safety=SafetyConfig(teleop_stale_ms=100.0)),
        clock=clock,
    )
    loop.run_episode()
    [hold] = [e for e in tape.events if e.kind is EventKind.HOLD]
    assert "no fresh teleop input" in hold.reason
    # the last fresh sample is from t=0.16 s; 100 ms later (5 periods of 20 ms) the robot is held
    assert hold.step in (13, 14)
