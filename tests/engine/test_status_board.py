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


def test_every_camera_of_the_attempt_keeps_its_drop_count_in_the_panel() -> None:
    # A station's cameras do not all bring a frame with every step: the panel must not drop a
    # camera's line on the steps without its frame (it flickered before).
    from takeover.recorder.testing import start_record, step_record

    board = StatusBoard()
    dropped = {"corner": 0, "gripperPOV": 2}
    board.dropped_frames = lambda: dict(dropped)
    board.on_episode_start(start_record("ep-1"))
    image = np.zeros((4, 4, 3), np.uint8)
    board.on_step(step_record(0, 1.0, {"corner": image, "gripperPOV": image}))
    board.on_step(step_record(1, 1.05, {"gripperPOV": image}))
    timing = board.snapshot().timing
    assert timing["dropped corner"] == 0.0 and timing["dropped gripperPOV"] == 2.0
    board.on_episode_start(start_record("ep-2"))  # a new attempt lists its own cameras
    dropped.clear()
    board.on_step(step_record(0, 2.0, {"gripperPOV": image}))
    board.on_step(step_record(1, 2.05, {}))
    assert "dropped corner" not in board.snapshot().timing
    assert board.snapshot().timing["dropped gripperPOV"] == 0.0
