import numpy as np
import pytest

from takeover.teleop.devices import Scene, TeleopRequest
from takeover.teleop.scripted import ScriptedOperator, ScriptedOperatorConfig
from takeover.teleop.state_machine import Mode

EXPERT = np.array([1.0, 0.0, 0.0, 1.0], dtype=np.float32)


def operator(**cfg: object) -> ScriptedOperator:
    op = ScriptedOperator(ScriptedOperatorConfig(grace_steps=0, cooldown_steps=0, **cfg), clock=lambda: 0.0)  # type: ignore[arg-type]
    op.connect()
    return op


def run(
    op: ScriptedOperator, n: int, pos_step: float, proposed: np.ndarray, mode: Mode
) -> list[TeleopRequest]:
    seen: list[TeleopRequest] = []
    pos = np.zeros(3)
    for _ in range(n):
        pos = pos + pos_step
        op.observe(Scene(pos, proposed, EXPERT, mode))
        seen.extend(op.read().requests)
    return seen


def test_a_policy_that_follows_the_expert_is_left_alone() -> None:
    op = operator()
    assert run(op, 100, 0.01, EXPERT, Mode.AUTONOMOUS) == []


def test_stall_triggers_one_takeover() -> None:
    op = operator(stall_steps=10)
    assert run(op, 11, 0.0, EXPERT, Mode.AUTONOMOUS) == [TeleopRequest.TAKEOVER]
    assert op.reasons == ["stall"]


def test_drift_triggers_a_takeover() -> None:
    op = operator(drift_steps=5)
    away = np.array([-1.0, 0.0, 0.0, 1.0], dtype=np.float32)
    assert run(op, 5, 0.01, away, Mode.AUTONOMOUS) == [TeleopRequest.TAKEOVER]
    assert op.reasons == ["drift"]


def test_drives_with_the_expert_and_hands_back_later_each_time() -> None:
    op = operator(stall_steps=3, handback_after=4)
    assert run(op, 4, 0.0, EXPERT, Mode.AUTONOMOUS) == [TeleopRequest.TAKEOVER]
    cmd = op.read()
    np.testing.assert_allclose(cmd.twist[:3], EXPERT[:3])
    assert cmd.gripper == 1.0 and cmd.active
    assert run(op, 3, 0.01, EXPERT, Mode.HUMAN) == []
    assert run(op, 1, 0.01, EXPERT, Mode.HUMAN) == [TeleopRequest.HANDBACK]
    assert run(op, 4, 0.0, EXPERT, Mode.AUTONOMOUS) == [TeleopRequest.TAKEOVER]
    assert run(op, 7, 0.01, EXPERT, Mode.HUMAN) == []  # the second intervention lasts twice as long
    assert run(op, 1, 0.01, EXPERT, Mode.HUMAN) == [TeleopRequest.HANDBACK]


def test_demonstration_mode_takes_over_at_once_and_never_hands_back() -> None:
    op = operator(always_drive=True)
    assert run(op, 1, 0.0, EXPERT, Mode.HOLD) == [TeleopRequest.TAKEOVER]
    assert run(op, 200, 0.01, EXPERT, Mode.HUMAN) == []


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="handback_after"):
        ScriptedOperatorConfig(handback_after=0)
