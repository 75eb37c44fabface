"""What the status board tells the console of each step: the end effector for the state plot and
the gripper as commanded."""

from __future__ import annotations

import numpy as np

from takeover.app.engine.status import StatusBoard
from takeover.recorder.records import StepRecord
from takeover.storage.schema import ControlSource


def step(state: np.ndarray, action: np.ndarray) -> StepRecord:
    return StepRecord(
        index=3,
        t=1.0,
        state=state,
        action=action,
        proposed_action=action,
        control_source=ControlSource.HUMAN,
        images={},
        image_times={},
        success=False,
    )


def test_a_step_gives_the_plot_its_end_effector_and_the_gripper_as_commanded() -> None:
    board = StatusBoard()
    state = np.array([0.1, 0.6, 0.2, 0.9, 5.0], dtype=np.float32)
    board.on_step(step(state, np.array([0.0, 0.0, 0.0, 1.0], dtype=np.float32)))
    status = board.snapshot()
    assert status.ee is not None and status.ee.dtype == np.float32
    np.testing.assert_array_equal(status.ee, state[:3])
    assert status.gripper_closed is True and status.mode == "HUMAN" and status.step == 4
    state[0] = 9.0  # the status keeps its own copy
    assert status.ee[0] == np.float32(0.1)

    board.on_step(step(state, np.array([0.0, 0.0, 0.0, -1.0], dtype=np.float32)))
    assert board.snapshot().gripper_closed is False


def test_a_station_without_an_end_effector_or_a_gripper_shows_neither() -> None:
    board = StatusBoard()
    board.on_step(step(np.zeros(2, dtype=np.float32), np.zeros(2, dtype=np.float32)))
    status = board.snapshot()
    assert status.ee is None and status.gripper_closed is None
