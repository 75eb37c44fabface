"""Asking the policy ahead of time (``inference_lead_steps``): the loop keeps executing the current
chunk while a slow answer travels, and uses the answer from the period it arrives in."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from takeover.app.control.inference import ChunkPrefetcher, ChunkResult, PolicyUnavailable, Proposal
from takeover.app.control.loop import ControlLoop, LoopConfig
from takeover.app.control.pacing import FakeClock
from takeover.storage.schema import ControlSource, EventKind

from .test_loop import PointStation, Tape

H = 12


class CountingStation(PointStation):
    """A point station that lets a waiting policy know how many periods have gone by. Each act
    takes 10 ms of real time, as a robot's would, so the policy's worker thread gets to run."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.acts = 0
        self.cond = threading.Condition()

    def act(self, action: np.ndarray) -> Any:
        obs = super().act(action)
        time.sleep(0.01)
        with self.cond:
            self.acts += 1
            self.cond.notify_all()
        return obs


class SlowTimedPolicy:
    """Each action is meant for one period: action k of a chunk asked at step s moves x by
    0.01 * (s + k). Every answer but the first comes ``delay`` periods after the one that asked."""

    policy_id = "slow-timed"

    def __init__(self, station: CountingStation, delay: int) -> None:
        self.station, self.delay = station, delay
        self.calls: list[int] = []

    def infer(self, state: np.ndarray, step: int) -> Proposal:
        self.calls.append(step)
        if len(self.calls) > 1:
            with self.station.cond:  # not before `delay` periods after the one that asked
                self.station.cond.wait_for(lambda: self.station.acts >= step + self.delay, timeout=5.0)
        k = np.arange(step, step + H, dtype=np.float32)
        chunk = np.stack([0.01 * k, np.zeros(H), np.zeros(H), -np.ones(H)], axis=1).astype(np.float32)
        return Proposal(step, chunk, {"asked_at": np.array([step])})


def run(lead: int, delay: int, steps: int = 60) -> tuple[ControlLoop, Tape, SlowTimedPolicy]:
    clock = FakeClock()
    station = CountingStation(clock)
    policy = SlowTimedPolicy(station, delay)
    tape = Tape()
    loop = ControlLoop(
        station,
        policy,
        [],
        [tape],
        LoopConfig(rate_hz=50.0, max_steps=steps, inference_lead_steps=lead),
        clock,
    )
    loop.run_episode()
    return loop, tape, policy


def test_a_slow_policy_asked_ahead_never_stalls_and_its_actions_stay_on_time() -> None:
    _, tape, policy = run(lead=2, delay=2)
    executed = np.stack([s.action for s in tape.steps])
    # Every period executed the action meant for it: answers were aligned to the period they
    # arrived in (the first actions of a late chunk skipped), so nothing repeats or jumps back.
    np.testing.assert_allclose(executed[:, 0], 0.01 * np.arange(60), atol=1e-6)
    assert [s.control_source for s in tape.steps] == [ControlSource.POLICY] * 60
    assert not [e for e in tape.events if e.kind is EventKind.HOLD]
    # Requests went out two periods before each open-loop window ran out, with that period's state.
    assert policy.calls[0] == 0 and policy.calls[1] == 2
    assert len(policy.calls) >= 60 // (4 + 2)
    extras = [s.extras["asked_at"][0] for s in tape.steps if "asked_at" in s.extras]
    assert extras == policy.calls[: len(extras)]


def test_the_same_policy_asked_synchronously_is_on_time_only_because_the_loop_waits() -> None:
    """lead 0 keeps the old behaviour: the request is made when the window runs out, and the
    loop waits for the answer (here the answer needs periods to pass, so it times out)."""
    clock = FakeClock()
    station = CountingStation(clock)
    policy = SlowTimedPolicy(station, delay=0)  # answers at once: the synchronous path works
    tape = Tape()
    loop = ControlLoop(station, policy, [], [tape], LoopConfig(rate_hz=50.0, max_steps=20), clock)
    loop.run_episode()
    np.testing.assert_allclose(
        np.stack([s.action for s in tape.steps])[:, 0], 0.01 * np.arange(20), atol=1e-6
    )
    assert policy.calls == [0, 4, 8, 12, 16]


class SilentAfterFirst:
    policy_id = "silent"

    def __init__(self) -> None:
        self.calls = 0
        self.release = threading.Event()

    def infer(self, state: np.ndarray, step: int) -> Proposal:
        self.calls += 1
        if self.calls > 1:
            self.release.wait(5.0)
            raise PolicyUnavailable("gone")
        return Proposal(step, np.tile(np.array([0.1, 0, 0, -1], np.float32), (H, 1)))


def test_a_policy_that_stops_answering_holds_the_robot_within_the_watchdog_limit() -> None:
    clock = FakeClock()
    policy = SilentAfterFirst()
    tape = Tape()
    loop = ControlLoop(
        PointStation(clock),
        policy,
        [],
        [tape],
        LoopConfig(rate_hz=50.0, max_steps=40, inference_lead_steps=2),
        clock,
    )
    t0 = time.monotonic()
    try:
        loop.run_episode()
        assert policy.calls == 2  # no new request while the silent one is still out
    finally:
        policy.release.set()
    holds = [e for e in tape.events if e.kind is EventKind.HOLD]
    assert len(holds) == 1 and "watchdog: policy chunk took" in holds[0].reason
    # The old chunk (8 actions) was executed past its open-loop window while the answer was awaited;
    # then, with nothing left, the loop waited up to the limit (500 ms) and held.
    sources = [s.control_source for s in tape.steps]
    assert sources[:H] == [ControlSource.POLICY] * H and sources[H] == ControlSource.HOLD
    assert time.monotonic() - t0 < 3.0


def test_a_policy_that_raises_is_not_hidden_by_the_worker_thread() -> None:
    class Broken:
        policy_id = "broken"

        def infer(self, state: np.ndarray, step: int) -> Proposal:
            raise ZeroDivisionError("bug in the policy")

    clock = FakeClock()
    loop = ControlLoop(
        PointStation(clock), Broken(), [], [Tape()], LoopConfig(max_steps=5, inference_lead_steps=1), clock
    )
    with pytest.raises(ZeroDivisionError, match="bug in the policy"):
        loop.run_episode()


def test_chunk_results_skip_the_actions_of_periods_already_over() -> None:
    chunk = np.arange(16, dtype=np.float32).reshape(8, 2)
    r = ChunkResult(step=10, chunk=chunk, error=None)
    np.testing.assert_array_equal(r.actions_from(10), chunk)
    np.testing.assert_array_equal(r.actions_from(13), chunk[3:])
    assert len(r.actions_from(18)) == 0


def test_prefetcher_answers_in_order_and_forgets_what_it_was_told_to() -> None:
    seen: list[int] = []

    def infer(state: np.ndarray, step: int) -> Proposal:
        seen.append(step)
        return Proposal(step, np.full((2, 1), float(step), dtype=np.float32))

    pf = ChunkPrefetcher(infer)
    assert pf.take() is None and not pf.pending
    pf.submit(np.zeros(3), 5, now=0.0)
    with pytest.raises(RuntimeError, match="already in flight"):
        pf.submit(np.zeros(3), 6, now=0.0)
    result = pf.take(wait_s=2.0)
    assert result is not None and result.step == 5 and result.chunk is not None and result.chunk[0, 0] == 5.0
    assert not pf.pending
    pf.submit(np.zeros(3), 7, now=0.0)
    pf.forget()
    assert pf.take(wait_s=0.1) is None
    deadline = time.monotonic() + 5.0
    while not pf.idle and time.monotonic() < deadline:
        time.sleep(0.01)
    pf.close()
    assert seen == [5, 7]  # the forgotten request did run; its answer was not handed out


def test_prefetcher_sends_nothing_new_while_a_forgotten_request_is_still_out() -> None:
    gate = threading.Event()

    def infer(state: np.ndarray, step: int) -> Proposal:
        gate.wait(5.0)
        return Proposal(step, np.zeros((2, 1), dtype=np.float32))

    pf = ChunkPrefetcher(infer)
    pf.submit(np.zeros(3), 1, now=0.0)
    pf.forget()
    assert not pf.pending and not pf.idle
    with pytest.raises(RuntimeError, match="already in flight"):
        pf.submit(np.zeros(3), 2, now=0.0)
    gate.set()
    deadline = time.monotonic() + 5.0
    while not pf.idle and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pf.idle
    pf.submit(np.zeros(3), 3, now=0.0)
    result = pf.take(wait_s=5.0)
    assert result is not None and result.step == 3
    pf.close()


def test_no_request_is_in_flight_once_the_attempt_has_ended() -> None:
    """The policy client is not used by the worker between attempts (its owner may close it)."""

    class Sleepy:
        policy_id = "sleepy"

        def __init__(self) -> None:
            self.calls: list[int] = []
            self.returned: list[int] = []

        def infer(self, state: np.ndarray, step: int) -> Proposal:
            self.calls.append(step)
            time.sleep(0.3 if step >= 15 else 0.0)  # the last request is still out at the end
            self.returned.append(step)
            return Proposal(step, np.tile(np.array([0.1, 0, 0, -1], np.float32), (H, 1)))

    clock = FakeClock()
    policy = Sleepy()
    loop = ControlLoop(
        CountingStation(clock), policy, [], [Tape()], LoopConfig(max_steps=23, inference_lead_steps=2), clock
    )
    loop.run_episode()
    assert loop.feed is not None and loop.feed.prefetch is not None
    assert loop.feed.prefetch.idle and not loop.feed.prefetch.pending
    assert policy.returned == policy.calls and len(policy.calls) >= 2
    calls = list(policy.calls)
    time.sleep(0.1)
    assert policy.calls == calls
