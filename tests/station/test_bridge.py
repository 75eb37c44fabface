"""The reference bridge driving the fake robot: targets, clamping, refusal, lifecycle."""

from __future__ import annotations

import numpy as np
import pytest

from takeover.app.station.bridge import BridgeConfig, BridgeStation
from takeover.app.station.fake_robot import FakeRobot, FakeRobotConfig

CFG = FakeRobotConfig()


def _station(robot: FakeRobot, **overrides: object) -> BridgeStation:
    return BridgeStation(robot, CFG.bridge_config(**overrides))


def test_no_io_before_connect_and_close_stops_the_robot() -> None:
    robot = FakeRobot()
    station = _station(robot)
    assert not robot.connected
    with pytest.raises(RuntimeError, match="not connected"):
        station.reset()
    with station:
        assert robot.connected
    assert robot.closed and robot.stops == 1


def test_actions_become_clamped_absolute_targets() -> None:
    robot = FakeRobot()
    with _station(robot, max_step_m=0.02) as station:
        obs = station.reset()
        np.testing.assert_allclose(obs.ee_target, CFG.start, atol=1e-6)
        obs = station.act(np.array([1.0, -0.5, 0.0, 1.0], np.float32))
        np.testing.assert_allclose(obs.ee_target, np.add(CFG.start, (0.02, -0.01, 0.0)), atol=1e-6)
        for _ in range(100):  # push up against the workspace ceiling
            obs = station.act(np.array([0.0, 0.0, 1.0, 1.0], np.float32))
        assert obs.ee_target[2] == pytest.approx(CFG.workspace_high[2])
        assert all(float(t[2]) <= CFG.workspace_high[2] + 1e-6 for t, _ in robot.commands)
        # the first-order arm has followed its target
        assert robot.position[2] == pytest.approx(CFG.workspace_high[2], abs=1e-3)
        assert obs.state.shape == (7,) and obs.state[3] == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(
    "action",
    [
        np.array([0, 0, 0, 1.01], np.float32),
        np.array([np.nan, 0, 0, 0], np.float32),
        np.zeros(3, np.float32),
        np.zeros(4, np.int64),
    ],
)
def test_bad_actions_never_reach_the_adapter(action: np.ndarray) -> None:
    robot = FakeRobot()
    with _station(robot) as station:
        station.reset()
        with pytest.raises(ValueError, match="action"):
            station.act(action)
    assert robot.commands == []


def test_act_before_reset_is_refused() -> None:
    robot = FakeRobot()
    with _station(robot) as station, pytest.raises(RuntimeError, match="reset"):
        station.act(np.zeros(4, np.float32))
    assert robot.commands == []


def test_reset_goes_home_when_configured() -> None:
    robot = FakeRobot()
    with _station(robot, home=(0.1, 0.5, 0.3)) as station:
        obs = station.reset(seed=7)
    np.testing.assert_allclose(obs.ee_target, [0.1, 0.5, 0.3], atol=1e-6)
    assert len(robot.commands) == 1 and robot.commands[0][1] == -1.0


def test_camera_shows_the_end_effector() -> None:
    robot = FakeRobot()
    with _station(robot) as station:
        before = station.reset().images["fake"]
        for _ in range(30):
            after = station.act(np.array([1.0, 0.0, 0.0, 0.0], np.float32)).images["fake"]
    assert before.shape == (48, 64, 3) and before.dtype == np.uint8
    assert not np.array_equal(before, after)
    col_before = int(np.argmax(before[..., 0].max(axis=0)))
    col_after = int(np.argmax(after[..., 0].max(axis=0)))
    assert col_after > col_before  # moved right in the image


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="below"):
        BridgeConfig(workspace_low=(0, 0, 0), workspace_high=(1, 0, 1))
    with pytest.raises(ValueError, match="max_step_m"):
        BridgeConfig(max_step_m=0.5)
    with pytest.raises(ValueError, match="outside the workspace"):
        BridgeConfig(home=(9.0, 0.5, 0.2))


def test_a_misbehaving_adapter_is_reported() -> None:
    class Broken(FakeRobot):
        def read_state(self) -> tuple[np.ndarray, np.ndarray]:
            return np.zeros(3, np.float32), np.zeros(3, np.float32)

    with _station(Broken()) as station, pytest.raises(ValueError, match="adapter state has shape"):
        station.reset()
