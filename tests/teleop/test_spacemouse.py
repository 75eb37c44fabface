"""SpaceMouseTeleop on the real pyspacemouse open/decode path, fed by the fake HID transport."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from takeover.teleop.devices import TeleopRequest
from takeover.teleop.spacemouse import SpaceMouseConfig, SpaceMouseTeleop, apply_deadband
from takeover.teleop.testing import FakeHidDevice, SpaceMouseReports, install_fake_hid

DB = 0.08
AXIS_NAMES = ("x", "y", "z", "roll", "pitch", "yaw")


class FakeClock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def expected(v: float, db: float = DB) -> float:
    return float(np.sign(v) * max(abs(v) - db, 0.0) / (1.0 - db))


@pytest.fixture(params=["SpaceMouse Compact", "SpaceMouse Wireless"])
def rig(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """A fake device of one model on the fake bus; Compact uses two axis reports, Wireless one."""
    reports = SpaceMouseReports(request.param)
    dev = reports.device()
    install_fake_hid(monkeypatch, [dev])
    return reports, dev


@pytest.fixture
def compact(monkeypatch: pytest.MonkeyPatch):
    reports = SpaceMouseReports("SpaceMouseCompact")
    dev = reports.device()
    bus = install_fake_hid(monkeypatch, [dev])
    return reports, dev, bus


def make(cfg: SpaceMouseConfig | None = None, clock: FakeClock | None = None) -> SpaceMouseTeleop:
    sm = SpaceMouseTeleop(cfg or SpaceMouseConfig(), clock=clock or FakeClock())
    sm.connect()
    return sm


def test_report_builder_layout_follows_devices_toml() -> None:
    compact = SpaceMouseReports("SpaceMouseCompact").motion_counts(x=1, rz=-1)
    assert [r[0] for r in compact] == [1, 2]  # translation, rotation channels
    assert compact[0][1:3] == b"\x01\x00" and compact[1][5:7] == b"\xff\xff"
    wireless = SpaceMouseReports("SpaceMouseWireless").motion_counts(x=1, rz=-1)
    assert len(wireless) == 1 and len(wireless[0]) == 13
    assert wireless[0][1:3] == b"\x01\x00" and wireless[0][11:13] == b"\xff\xff"
    assert SpaceMouseReports("SpaceMouseCompact").buttons("RIGHT") == b"\x03\x02"


@pytest.mark.parametrize("axis", range(6))
def test_each_device_axis_lands_on_its_robot_axis_with_its_sign(rig, axis: int) -> None:
    reports, dev = rig
    sm = make()
    for value in (0.6, -0.6):
        dev.push(reports.motion(**{AXIS_NAMES[axis]: value}))
        cmd = sm.read()
        want = np.zeros(6)
        want[axis] = expected(value)
        np.testing.assert_allclose(cmd.twist, want, atol=2e-3)
        assert cmd.twist.dtype == np.float32 and cmd.connected and cmd.active


def test_raw_hid_frame_becomes_right_handed_z_up(rig) -> None:
    """HID is +y toward the user and +z down; robot frame is +y away and +z up."""
    reports, dev = rig
    sm = make(SpaceMouseConfig(deadband=0.0))
    dev.push(reports.motion_counts(x=350, y=350, z=350))
    np.testing.assert_allclose(sm.read().twist[:3], [1.0, -1.0, -1.0], atol=1e-6)
    dev.push(reports.motion_counts(rz=175))  # HID yaw positive is clockwise seen from above
    np.testing.assert_allclose(sm.read().twist, [0, 0, 0, 0, 0, -0.5], atol=1e-6)


def test_axis_map_sign_and_scale(compact) -> None:
    reports, dev, _ = compact
    cfg = SpaceMouseConfig(
        deadband=0.0,
        axis_map=(1, 0, 2, 3, 4, 5),  # robot x <- device y, robot y <- device x
        axis_sign=(1, 1, -1, 1, 1, 1),
        scale=(1.0, 0.5, 1.0, 0.0, 1.0, 1.0),
    )
    sm = make(cfg)
    dev.push(reports.motion(x=0.4, y=0.2, z=0.3, roll=0.9))
    np.testing.assert_allclose(sm.read().twist, [0.2, 0.2, -0.3, 0.0, 0.0, 0.0], atol=3e-3)


def test_deadband_zeroes_small_motion_and_is_continuous_at_the_edge(compact) -> None:
    reports, dev, _ = compact
    sm = make()
    dev.push(reports.motion(x=0.07, y=-0.08, yaw=0.05))
    cmd = sm.read()
    assert not cmd.twist.any() and not cmd.active and cmd.requests == ()

    # one count past the edge gives a tiny output, not a jump
    dev.push(reports.motion_counts(x=round(DB * 350) + 1))
    just_out = float(sm.read().twist[0])
    assert 0.0 < just_out < 0.01

    grid = np.linspace(-1.2, 1.2, 24001)
    out = apply_deadband(grid, DB)
    assert np.max(np.abs(np.diff(out))) < 1e-3  # no step anywhere, in particular at +-DB
    assert out[0] == -1.0 and out[-1] == 1.0 and np.all(np.diff(out) >= 0)


def test_all_queued_reports_are_drained_and_the_latest_wins(compact) -> None:
    reports, dev, _ = compact
    sm = make()
    for v in (0.2, 0.4, 0.6, 0.9, 0.5):
        dev.push(reports.motion(x=v, z=-v))
    cmd = sm.read()
    assert dev.pending == 0
    np.testing.assert_allclose(cmd.twist[[0, 2]], [expected(0.5), expected(-0.5)], atol=2e-3)
    assert cmd.requests == (TeleopRequest.TAKEOVER,)
    # no new reports: the device is still deflected, the state persists
    again = sm.read()
    np.testing.assert_allclose(again.twist, cmd.twist)
    assert again.requests == ()


def test_drain_is_bounded(compact) -> None:
    reports, dev, _ = compact
    sm = make(SpaceMouseConfig(max_reports_per_read=3))
    for v in (0.2, 0.3, 0.4, 0.5):
        dev.push(reports.motion(x=v))  # two reports each on the Compact
    sm.read()
    assert dev.pending == 5
    sm.read()
    sm.read()
    assert dev.pending == 0
    np.testing.assert_allclose(sm.read().twist[0], expected(0.5), atol=2e-3)


def test_gripper_toggles_once_per_press_edge(compact) -> None:
    reports, dev, _ = compact
    sm = make()
    dev.push(reports.buttons("LEFT"))
    first = sm.read()
    assert first.gripper == 1.0 and first.active and first.requests == ()
    dev.push(reports.buttons("LEFT"))  # still held: a repeated report is not a press
    held = sm.read()
    assert held.gripper is None and held.active
    dev.push(reports.buttons())
    assert sm.read().gripper is None
    # press and release between two polls: the edge is still seen
    dev.push(reports.buttons("LEFT"), reports.buttons())
    quick = sm.read()
    assert quick.gripper == -1.0 and quick.active


def test_handback_and_takeover_buttons_request_once_per_press(compact) -> None:
    reports, dev, _ = compact
    sm = make(SpaceMouseConfig(gripper_button=None, takeover_button="LEFT", handback_button="RIGHT"))
    dev.push(reports.buttons("RIGHT"))
    assert sm.read().requests == (TeleopRequest.HANDBACK,)
    dev.push(reports.buttons("RIGHT"))
    assert sm.read().requests == ()
    dev.push(reports.buttons(), reports.buttons("LEFT"), reports.buttons(), reports.buttons("RIGHT"))
    cmd = sm.read()
    assert cmd.requests == (TeleopRequest.TAKEOVER, TeleopRequest.HANDBACK)
    assert cmd.gripper is None


def test_named_buttons_on_a_many_button_model(monkeypatch: pytest.MonkeyPatch) -> None:
    pro = SpaceMouseReports("SpaceMousePro")
    dev = pro.device()
    install_fake_hid(monkeypatch, [dev])
    sm = make(SpaceMouseConfig(gripper_button="BTN_1", handback_button="BTN_2", hold_button="ESC"))
    dev.push(pro.buttons("ESC"), pro.buttons("ESC", "BTN_1"), pro.buttons("BTN_2"))
    cmd = sm.read()
    assert cmd.requests == (TeleopRequest.HOLD, TeleopRequest.HANDBACK)
    assert cmd.gripper == 1.0


def test_motion_requests_takeover_once_per_touch(compact) -> None:
    reports, dev, _ = compact
    sm = make()
    dev.push(reports.motion(y=0.3))
    assert sm.read().requests == (TeleopRequest.TAKEOVER,)
    for v in (0.4, 0.5):
        dev.push(reports.motion(y=v))
        assert sm.read().requests == ()
    dev.push(reports.motion(y=0.05))  # back inside the deadband: the touch ends
    cmd = sm.read()
    assert cmd.requests == () and not cmd.active
    dev.push(reports.motion(pitch=-0.5))
    assert sm.read().requests == (TeleopRequest.TAKEOVER,)


def test_motion_on_a_disabled_axis_or_with_motion_takeover_off_requests_nothing(compact) -> None:
    reports, dev, _ = compact
    sm = make(SpaceMouseConfig(scale=(1, 1, 1, 0, 0, 0)))
    dev.push(reports.motion(roll=0.8))
    assert sm.read().requests == ()
    sm.close()
    sm2 = make(SpaceMouseConfig(takeover_on_motion=False))
    dev.push(reports.motion(x=0.8))
    cmd = sm2.read()
    assert cmd.requests == () and cmd.active and cmd.twist[0] > 0.7


@pytest.mark.parametrize("error", [None, OSError(5, "Input/output error")])
def test_unplug_during_motion_reports_disconnected_and_zero_twist(compact, error) -> None:
    reports, dev, _ = compact
    sm = make()
    dev.push(reports.motion(x=0.9))
    assert sm.read().twist[0] > 0.8
    dev.unplug(error)
    cmd = sm.read()  # must not raise
    assert not cmd.connected and not cmd.active
    assert not cmd.twist.any() and cmd.gripper is None and cmd.requests == ()
    assert "device lost" in cmd.error
    assert ("HIDException" if error is None else "OSError") in cmd.error
    assert dev.close_count == 1 and not dev.is_open()
    assert not sm.connected


def test_presses_decoded_before_a_failure_are_not_lost(compact) -> None:
    reports, dev, _ = compact
    sm = make()
    dev.push(reports.buttons("RIGHT"), reports.buttons())
    real_read = dev.read
    calls = 0

    def read_then_fail(size: int = 64, timeout: int | None = None) -> bytearray:
        nonlocal calls
        calls += 1
        if calls == 3:  # both button reports decoded, then the cable goes
            dev.unplug()
        return real_read(size, timeout)

    dev.read = read_then_fail  # type: ignore[method-assign]
    cmd = sm.read()
    assert not cmd.connected and cmd.requests == (TeleopRequest.HANDBACK,)
    assert not cmd.twist.any() and not cmd.active


def test_replug_reopens_no_more_often_than_the_interval(compact) -> None:
    reports, dev, _ = compact
    clock = FakeClock(10.0)
    sm = make(SpaceMouseConfig(reopen_interval_s=1.0), clock)
    assert dev.open_count == 1
    dev.push(reports.motion(z=0.5))
    sm.read()
    dev.unplug()
    assert not sm.read().connected  # lost at t=10.0

    clock.t = 10.6
    cmd = sm.read()  # too early to try: nothing is opened
    assert not cmd.connected and dev.open_count == 1
    clock.t = 11.0
    cmd = sm.read()  # tries, the device is still away
    assert not cmd.connected and "cannot open" in cmd.error and "device lost" in cmd.error
    assert dev.open_count == 1

    dev.replug()
    clock.t = 11.5
    assert not sm.read().connected and dev.open_count == 1  # next try only at 12.0
    clock.t = 12.0
    back = sm.read()
    assert back.connected and back.error == "" and dev.open_count == 2
    assert not back.twist.any()  # the old deflection is not resurrected
    dev.push(reports.motion(z=0.5), reports.buttons("LEFT"))
    cmd = sm.read()
    assert cmd.twist[2] == pytest.approx(expected(0.5), abs=2e-3)
    assert cmd.requests == (TeleopRequest.TAKEOVER,) and cmd.gripper == 1.0


def test_connect_without_a_device_raises_then_read_finds_it_later(monkeypatch) -> None:
    bus = install_fake_hid(monkeypatch, [])
    clock = FakeClock(0.0)
    sm = SpaceMouseTeleop(SpaceMouseConfig(reopen_interval_s=0.5), clock=clock)
    with pytest.raises(ConnectionError, match="No connected or supported devices"):
        sm.connect()
    assert not sm.read().connected
    reports = SpaceMouseReports("SpaceMouseCompact")
    bus.add(reports.device())
    clock.t = 0.5
    assert sm.read().connected and sm.model == "SpaceMouseCompact"


def test_lifecycle_no_io_before_connect_and_context_manager_closes(compact) -> None:
    _, dev, _ = compact
    sm = SpaceMouseTeleop(SpaceMouseConfig())
    assert dev.open_count == 0 and dev.read_count == 0
    cmd = sm.read()
    assert not cmd.connected and "connect" in cmd.error and dev.open_count == 0
    with sm as entered:
        assert entered is sm and dev.is_open() and dev.nonblocking
    assert dev.close_count == 1 and not sm.read().connected


def test_open_by_model_name_index_and_path(monkeypatch, tmp_path: Path) -> None:
    compact, wireless = SpaceMouseReports("SpaceMouseCompact"), SpaceMouseReports("SpaceMouseWireless")
    node = tmp_path / "hidraw7"
    node.touch()
    d0 = compact.device(path="/dev/hidraw-a")
    d1 = wireless.device(path="/dev/hidraw-b")
    d2 = wireless.device(path=str(node))
    install_fake_hid(monkeypatch, [d0, d1, d2])
    by_name = make(SpaceMouseConfig(device_name="SpaceMouseWireless", device_index=1))
    assert by_name.model == "SpaceMouseWireless" and d2.is_open() and not d1.is_open()
    by_name.close()
    by_path = make(SpaceMouseConfig(path=str(node)))
    assert d2.is_open() and by_path.model == "SpaceMouseWireless"
    d2.push(wireless.motion(x=0.5))
    assert by_path.read().twist[0] == pytest.approx(expected(0.5), abs=2e-3)


def test_unknown_button_name_is_a_clear_connect_error(compact) -> None:
    _, dev, _ = compact
    sm = SpaceMouseTeleop(SpaceMouseConfig(gripper_button="BTN_1"))
    with pytest.raises(ConnectionError, match="'BTN_1' is not on this model"):
        sm.connect()
    assert not dev.is_open()


def test_no_deprecation_warning_on_the_whole_path(compact) -> None:
    reports, dev, _ = compact
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sm = make()
        dev.push(reports.motion(x=0.5), reports.buttons("RIGHT"))
        sm.read()
        sm.close()
    assert [w for w in caught if issubclass(w.category, DeprecationWarning)] == []


def test_config_is_validated_with_actionable_messages() -> None:
    with pytest.raises(ValueError, match="deadband"):
        SpaceMouseConfig(deadband=1.0)
    with pytest.raises(ValueError, match="permutation"):
        SpaceMouseConfig(axis_map=(0, 0, 2, 3, 4, 5))
    with pytest.raises(ValueError, match=r"\+1 or -1"):
        SpaceMouseConfig(axis_sign=(1, 1, 1, 1, 1, 2))
    with pytest.raises(ValueError, match="two actions"):
        SpaceMouseConfig(gripper_button=1, handback_button=1)


def test_fake_bus_without_monkeypatch_restores_the_real_enumeration() -> None:
    import pyspacemouse.api

    real = pyspacemouse.api.Enumeration
    dev = FakeHidDevice.for_model("SpaceMouseCompact")
    with install_fake_hid(None, [dev]):
        assert pyspacemouse.api.Enumeration is not real
        assert pyspacemouse.get_connected_devices() == ["SpaceMouseCompact"]
    assert pyspacemouse.api.Enumeration is real


def test_holding_the_handback_button_is_an_estop_once_per_press(compact) -> None:
    reports, dev, _ = compact
    clock = FakeClock()
    sm = make(SpaceMouseConfig(estop_long_press_s=1.0), clock)
    dev.push(reports.buttons("RIGHT"))  # the second button: hand-back on press
    assert sm.read().requests == (TeleopRequest.HANDBACK,)
    clock.t += 0.6
    assert sm.read().requests == ()  # held, no report: not long enough yet
    clock.t += 0.5
    assert sm.read().requests == (TeleopRequest.ESTOP,)  # held 1.1 s with no new report
    clock.t += 2.0
    assert sm.read().requests == ()  # once per press
    dev.push(reports.buttons())
    sm.read()
    dev.push(reports.buttons("RIGHT"))
    clock.t += 0.2
    dev.push(reports.buttons())
    assert sm.read().requests == (TeleopRequest.HANDBACK,)  # a short press is only a hand-back
    clock.t += 5.0
    assert sm.read().requests == ()


def test_a_dedicated_estop_button_and_the_long_press_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    reports = SpaceMouseReports("SpaceMouseCompact")
    dev = reports.device()
    install_fake_hid(monkeypatch, [dev])
    clock = FakeClock()
    sm = make(SpaceMouseConfig(gripper_button=None, estop_button="LEFT", estop_long_press_s=0.0), clock)
    dev.push(reports.buttons("LEFT"))
    assert sm.read().requests == (TeleopRequest.ESTOP,)
    dev.push(reports.buttons("RIGHT"))
    sm.read()
    clock.t += 5.0
    assert sm.read().requests == ()  # long press off
    with pytest.raises(ValueError, match="estop_long_press_s"):
        SpaceMouseConfig(estop_long_press_s=-1.0)
    with pytest.raises(ValueError, match="bound to two actions"):
        SpaceMouseConfig(estop_button=1)


def test_presses_between_attempts_are_dropped(compact) -> None:
    reports, dev, _ = compact
    sm = make(SpaceMouseConfig(takeover_button="LEFT", gripper_button=None))
    dev.push(reports.buttons("LEFT"), reports.buttons())
    assert sm.drop_requests() == (TeleopRequest.TAKEOVER,)
    assert sm.read().requests == ()
