"""KeyboardTeleop: key map, press edges, staleness with an injected clock, thread safety."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from takeover.teleop.devices import TeleopRequest
from takeover.teleop.keyboard import KeyboardConfig, KeyboardTeleop


class FakeClock:
    def __init__(self, t: float = 50.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def kb(clock: FakeClock) -> KeyboardTeleop:
    dev = KeyboardTeleop(KeyboardConfig(), clock=clock)
    dev.connect()
    return dev


@pytest.mark.parametrize(
    ("key", "axis", "sign"),
    [("W", 0, 1), ("S", 0, -1), ("A", 1, 1), ("D", 1, -1), ("R", 2, 1), ("F", 2, -1)],
)
def test_default_motion_keys(kb: KeyboardTeleop, clock: FakeClock, key: str, axis: int, sign: int) -> None:
    kb.set_keys([key], clock.t)
    cmd = kb.read()
    want = np.zeros(6, dtype=np.float32)
    want[axis] = sign
    np.testing.assert_array_equal(cmd.twist, want)
    assert cmd.active and cmd.connected and cmd.requests == () and cmd.gripper is None


def test_combined_and_opposite_keys(kb: KeyboardTeleop, clock: FakeClock) -> None:
    kb.set_keys(["w", "D", "R"], clock.t)  # names are case-insensitive
    np.testing.assert_array_equal(kb.read().twist, [1, -1, 1, 0, 0, 0])
    kb.set_keys(["W", "S"], clock.t)
    cmd = kb.read()
    assert not cmd.twist.any() and cmd.active  # cancel out, but the operator is touching
    kb.set_keys(["Q", "Shift"], clock.t)  # unbound keys are ignored
    cmd = kb.read()
    assert not cmd.twist.any() and not cmd.active


def test_configurable_map_and_speed(clock: FakeClock) -> None:
    cfg = KeyboardConfig(motion_keys=(("Up", 0, 1.0), ("Q", 5, 1.0), ("E", 5, -1.0)), speed=0.25)
    kb = KeyboardTeleop(cfg, clock=clock)
    kb.connect()
    kb.set_keys(["Up", "E", "W"], clock.t)  # W is no longer bound
    np.testing.assert_allclose(kb.read().twist, [0.25, 0, 0, 0, 0, -0.25])


def test_gripper_toggles_on_press_edges_only(kb: KeyboardTeleop, clock: FakeClock) -> None:
    kb.set_keys(["Space"], clock.t)
    assert kb.read().gripper == 1.0
    kb.set_keys(["Space"], clock.t)  # auto-repeat of a held key is not a press
    assert kb.read().gripper is None
    kb.set_keys([], clock.t)
    kb.set_keys(["Space"], clock.t)
    kb.set_keys([], clock.t)  # pressed and released between two polls
    cmd = kb.read()
    assert cmd.gripper == -1.0 and cmd.active
    kb.sync_gripper(closed=True)
    kb.set_keys(["Space"], clock.t)
    assert kb.read().gripper == -1.0  # from closed, a press opens


def test_requests_once_per_press_in_order(kb: KeyboardTeleop, clock: FakeClock) -> None:
    kb.set_keys(["T"], clock.t)
    kb.set_keys(["T", "W"], clock.t)
    assert kb.read().requests == (TeleopRequest.TAKEOVER,)
    assert kb.read().requests == ()
    kb.set_keys(["H"], clock.t)
    kb.set_keys(["Escape"], clock.t)
    kb.set_keys(["P"], clock.t)
    kb.set_keys([], clock.t)
    kb.set_keys(["T"], clock.t)
    assert kb.read().requests == (
        TeleopRequest.HANDBACK,
        TeleopRequest.HOLD,
        TeleopRequest.HOLD,
        TeleopRequest.TAKEOVER,
    )


def test_takeover_on_motion_once_per_touch(clock: FakeClock) -> None:
    kb = KeyboardTeleop(KeyboardConfig(takeover_on_motion=True), clock=clock)
    kb.connect()
    kb.set_keys(["W"], clock.t)
    kb.set_keys(["W", "A"], clock.t)
    assert kb.read().requests == (TeleopRequest.TAKEOVER,)
    kb.set_keys([], clock.t)
    kb.set_keys(["S"], clock.t)
    assert kb.read().requests == (TeleopRequest.TAKEOVER,)


def test_stale_input_is_treated_as_released(kb: KeyboardTeleop, clock: FakeClock) -> None:
    kb.set_keys(["W"], clock.t)
    clock.t += 0.5
    assert kb.read().twist[0] == 1.0  # exactly at the limit: still fresh
    clock.t += 0.01
    cmd = kb.read()
    assert not cmd.twist.any() and not cmd.active and cmd.connected
    assert "stale" in cmd.error
    kb.set_keys(["W"], clock.t)  # updates resume with the key still held
    cmd = kb.read()
    assert cmd.twist[0] == 1.0 and cmd.error == ""
    kb.set_keys([], clock.t)
    clock.t += 10.0
    assert kb.read().error == ""  # nothing held: silence is not staleness


def test_lifecycle(clock: FakeClock) -> None:
    kb = KeyboardTeleop(clock=clock)
    kb.set_keys(["W", "T"], clock.t)  # ignored before connect
    cmd = kb.read()
    assert not cmd.connected and not cmd.twist.any() and cmd.requests == ()
    with kb:
        kb.set_keys(["W", "T"], clock.t)
        assert kb.read().requests == (TeleopRequest.TAKEOVER,)
    assert not kb.read().connected


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="both"):
        KeyboardConfig(takeover_keys=("Space",))
    with pytest.raises(ValueError, match="axis"):
        KeyboardConfig(motion_keys=(("W", 6, 1.0),))
    with pytest.raises(ValueError, match="speed"):
        KeyboardConfig(speed=0.0)


def test_thread_safety_smoke(clock: FakeClock) -> None:
    """A GUI thread hammering set_keys while the loop polls: no errors, no lost or doubled presses."""
    kb = KeyboardTeleop(clock=clock)
    kb.connect()
    presses = 20000
    errors: list[BaseException] = []
    done = threading.Event()

    def gui() -> None:
        try:
            for _ in range(presses):
                kb.set_keys(["W", "H"], clock.t)
                kb.set_keys(["W"], clock.t)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            done.set()

    seen = 0
    thread = threading.Thread(target=gui)
    thread.start()
    while not done.is_set():
        cmd = kb.read()
        assert cmd.twist[0] in (0.0, 1.0) and not cmd.twist[1:].any()
        seen += cmd.requests.count(TeleopRequest.HANDBACK)
    thread.join(timeout=5)
    seen += kb.read().requests.count(TeleopRequest.HANDBACK)
    assert errors == [] and seen == presses


def test_presses_not_yet_read_are_dropped_between_attempts() -> None:
    kb = KeyboardTeleop()
    kb.connect()
    kb.set_keys(["T"], 1.0)
    kb.set_keys([], 1.1)
    assert kb.drop_requests() == (TeleopRequest.TAKEOVER,)
    cmd = kb.read()
    assert cmd.requests == () and not cmd.active
