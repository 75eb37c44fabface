import numpy as np
import pytest

from takeover.teleop.devices import Scene, TaskProgress, TeleopRequest
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


def scenes(
    op: ScriptedOperator, done: list[int], mode: Mode, stages: int = 2, stuck: bool = False
) -> list[tuple[list[TeleopRequest], np.ndarray]]:
    """Show one scene per entry of ``done`` (sub-tasks done that period); the requests and the
    action (twist xyz + gripper) read after each."""
    out = []
    pos = np.zeros(3)
    for d in done:
        pos = pos + (0.0 if stuck else 0.01)
        op.observe(Scene(pos, EXPERT, EXPERT, mode, TaskProgress(d, stages)))
        cmd = op.read()
        out.append((list(cmd.requests), np.array([*cmd.twist[:3], cmd.gripper])))
    return out


def requests_of(seen: list[tuple[list[TeleopRequest], np.ndarray]]) -> list[TeleopRequest]:
    return [r for reqs, _ in seen for r in reqs]


def take_over(op: ScriptedOperator, done: int, stages: int = 2) -> None:
    seen = scenes(op, [done] * 4, Mode.AUTONOMOUS, stages, stuck=True)
    assert requests_of(seen) == [TeleopRequest.TAKEOVER]


def test_hands_back_once_the_sub_task_is_done_and_stays_done_not_after_a_fixed_time() -> None:
    op = operator(stall_steps=3, handback_after=4, settle_steps=5, retry_after=1000)
    take_over(op, 0)
    assert requests_of(scenes(op, [0] * 50, Mode.HUMAN)) == []  # far beyond handback_after
    assert requests_of(scenes(op, [1] * 4, Mode.HUMAN)) == []  # done, but not yet for settle_steps
    assert requests_of(scenes(op, [1], Mode.HUMAN)) == [TeleopRequest.HANDBACK]


def test_a_sub_task_done_only_for_a_moment_does_not_hand_back() -> None:
    op = operator(stall_steps=3, settle_steps=5, retry_after=1000)
    take_over(op, 0)
    assert requests_of(scenes(op, [1, 1, 1, 0, 1, 1, 1, 1], Mode.HUMAN)) == []
    assert requests_of(scenes(op, [1], Mode.HUMAN)) == [TeleopRequest.HANDBACK]


def test_a_takeover_after_the_last_sub_task_but_one_drives_to_the_end() -> None:
    op = operator(stall_steps=3, settle_steps=2, retry_after=1000)
    take_over(op, 1)  # the object is held: what is left is the task itself
    assert requests_of(scenes(op, [1] * 100, Mode.HUMAN)) == []


def test_each_further_takeover_asks_for_one_sub_task_more() -> None:
    op = operator(stall_steps=3, settle_steps=2, retry_after=1000)
    take_over(op, 0)
    assert requests_of(scenes(op, [1, 1], Mode.HUMAN)) == [TeleopRequest.HANDBACK]
    take_over(op, 0, stages=3)  # the policy dropped it: this time the operator wants two done
    assert requests_of(scenes(op, [1] * 20, Mode.HUMAN, stages=3)) == []
    assert requests_of(scenes(op, [2, 2], Mode.HUMAN, stages=3)) == [TeleopRequest.HANDBACK]


def test_stuck_while_driving_it_lets_go_and_starts_over() -> None:
    op = operator(stall_steps=3, retry_after=10, release_steps=3)
    take_over(op, 0)
    seen = scenes(op, [0] * 15, Mode.HUMAN)
    actions = [a for _, a in seen]
    let_go = np.array([0.0, 0.0, 1.0, -1.0])
    for a in actions[:9]:
        np.testing.assert_allclose(a, EXPERT)  # the expert drives
    for a in actions[9:12]:
        np.testing.assert_allclose(a, let_go)  # gripper open, straight up
    for a in actions[12:]:
        np.testing.assert_allclose(a, EXPERT)  # and the expert again
    assert op.retries == 1 and requests_of(seen) == []


def test_a_sub_task_done_while_driving_resets_the_wait_before_starting_over() -> None:
    op = operator(stall_steps=3, retry_after=10, release_steps=3, settle_steps=100)
    take_over(op, 0, stages=3)
    scenes(op, [0] * 8 + [1] * 8, Mode.HUMAN, stages=3)
    assert op.retries == 0


def test_without_progress_it_hands_back_after_a_fixed_time() -> None:
    op = operator(stall_steps=3, handback_after=4)
    assert run(op, 4, 0.0, EXPERT, Mode.AUTONOMOUS) == [TeleopRequest.TAKEOVER]
    assert run(op, 4, 0.01, EXPERT, Mode.HUMAN) == [TeleopRequest.HANDBACK]


def test_the_fixed_rule_can_be_asked_for_where_progress_is_reported() -> None:
    op = operator(stall_steps=3, handback_after=4, judge_progress=False)
    take_over(op, 0)
    assert requests_of(scenes(op, [0] * 4, Mode.HUMAN)) == [TeleopRequest.HANDBACK]


def test_task_progress_is_validated() -> None:
    with pytest.raises(ValueError, match=r"0\.\.2"):
        TaskProgress(3, 2)
