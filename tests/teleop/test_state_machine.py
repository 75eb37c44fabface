import threading

import pytest

from takeover.teleop.state_machine import TRANSITIONS, Mode, Request, TakeoverStateMachine


def test_requests_take_effect_only_when_consumed() -> None:
    sm = TakeoverStateMachine()
    sm.request(Request.TAKEOVER, t=1.0, reason="spacemouse")
    assert sm.mode is Mode.AUTONOMOUS
    [tr] = sm.consume(now=1.05)
    assert (tr.source, tr.target, tr.t, tr.requested_at, tr.reason) == (
        Mode.AUTONOMOUS,
        Mode.HUMAN,
        1.05,
        1.0,
        "spacemouse",
    )
    assert sm.mode is Mode.HUMAN


def test_invalid_requests_are_rejected_and_counted() -> None:
    sm = TakeoverStateMachine()
    sm.request(Request.HANDBACK, 0.0)  # not in HUMAN
    sm.request(Request.RESUME, 0.0)  # not in HOLD
    assert sm.consume(0.1) == []
    assert sm.rejected == 2
    assert sm.mode is Mode.AUTONOMOUS


def test_hold_and_resume_return_to_the_held_mode() -> None:
    sm = TakeoverStateMachine()
    sm.request(Request.TAKEOVER, 0.0)
    sm.request(Request.HOLD, 0.0)
    sm.request(Request.RESUME, 0.0)
    trs = sm.consume(0.1)
    assert [t.target for t in trs] == [Mode.HUMAN, Mode.HOLD, Mode.HUMAN]
    assert sm.mode is Mode.HUMAN


def test_duplicate_takeover_is_one_transition() -> None:
    sm = TakeoverStateMachine()
    for _ in range(3):
        sm.request(Request.TAKEOVER, 0.0)
    assert len(sm.consume(0.1)) == 1
    assert sm.rejected == 2


def test_requests_from_many_threads_are_all_seen() -> None:
    sm = TakeoverStateMachine()

    def spam() -> None:
        for _ in range(500):
            sm.request(Request.HOLD, 0.0)

    threads = [threading.Thread(target=spam) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    trs = sm.consume(1.0)
    assert len(trs) == 1 and sm.rejected == 1999


def test_reset_drops_pending_requests() -> None:
    sm = TakeoverStateMachine()
    sm.request(Request.TAKEOVER, 0.0)
    sm.reset(Mode.HOLD)
    assert sm.consume(0.1) == [] and sm.mode is Mode.HOLD


def test_handback_ramps_then_the_loop_ends_the_ramp() -> None:
    sm = TakeoverStateMachine()
    sm.request(Request.TAKEOVER, 0.0)
    sm.request(Request.HANDBACK, 0.0)
    sm.request(Request.HANDBACK, 0.0)  # already ramping: rejected
    assert [t.target for t in sm.consume(0.1)] == [Mode.HUMAN, Mode.RAMP]
    assert sm.rejected == 1
    sm.request(Request.RAMP_END, 0.2, "hand-back window over")
    [tr] = sm.consume(0.2)
    assert (tr.source, tr.target, tr.reason) == (Mode.RAMP, Mode.AUTONOMOUS, "hand-back window over")


def test_takeover_during_the_ramp_goes_back_to_the_human() -> None:
    sm = TakeoverStateMachine()
    for r in (Request.TAKEOVER, Request.HANDBACK, Request.TAKEOVER):
        sm.request(r, 0.0)
    assert sm.consume(0.1)[-1].target is Mode.HUMAN


def test_without_ramp_handback_goes_straight_to_the_policy() -> None:
    sm = TakeoverStateMachine(ramp=False)
    sm.request(Request.TAKEOVER, 0.0)
    sm.request(Request.HANDBACK, 0.0)
    assert [t.target for t in sm.consume(0.1)] == [Mode.HUMAN, Mode.AUTONOMOUS]


def test_resume_after_a_policy_hold_ramps_the_policy_back_in() -> None:
    sm = TakeoverStateMachine()
    sm.request(Request.HOLD, 0.0, "watchdog")
    sm.request(Request.RESUME, 0.0)
    assert [t.target for t in sm.consume(0.1)] == [Mode.HOLD, Mode.RAMP]


def test_estop_is_latched_until_reset_and_reset_leads_to_hold() -> None:
    sm = TakeoverStateMachine()
    sm.request(Request.TAKEOVER, 0.0)
    sm.request(Request.ESTOP, 0.0, "console")
    for r in (Request.RESUME, Request.HANDBACK, Request.TAKEOVER, Request.HOLD, Request.RAMP_END):
        sm.request(r, 0.0)
    trs = sm.consume(0.1)
    assert [t.target for t in trs] == [Mode.HUMAN, Mode.ESTOP]
    assert sm.rejected == 5 and sm.mode is Mode.ESTOP
    sm.reset(Mode.AUTONOMOUS)  # a new attempt does not clear it
    assert sm.mode is Mode.ESTOP
    sm.request(Request.RESET, 0.2, "operator")
    sm.request(Request.RESUME, 0.2)  # nothing to resume to: someone must choose who drives
    [tr] = sm.consume(0.3)
    assert (tr.source, tr.target) == (Mode.ESTOP, Mode.HOLD) and sm.mode is Mode.HOLD


def test_estop_and_reset_survive_the_start_of_an_attempt() -> None:
    sm = TakeoverStateMachine()
    sm.request(Request.TAKEOVER, 0.0)
    sm.request(Request.ESTOP, 0.0)
    sm.reset(Mode.AUTONOMOUS)
    assert [t.target for t in sm.consume(0.1)] == [Mode.ESTOP]


@pytest.mark.parametrize("mode", list(Mode))
def test_estop_is_reachable_from_every_mode_but_itself(mode: Mode) -> None:
    assert ((mode, Request.ESTOP) in TRANSITIONS) is (mode is not Mode.ESTOP)
