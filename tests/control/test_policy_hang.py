"""A policy server that stops answering holds the robot within the policy watchdog's limit,
over real sockets: the loop is stalled once, for at most that limit, never for the client's
connection timeout and never again while the server stays silent."""

from __future__ import annotations

import threading
import time

import numpy as np
import zmq

from takeover.app.control.loop import ControlLoop, LoopConfig
from takeover.app.control.pacing import Clock
from takeover.app.control.safety import SafetyConfig
from takeover.app.net.messages import Reply
from takeover.app.policy.protocol import REQUESTS, ActionChunkReply, Health, HealthReply, Infer
from takeover.app.policy.remote import RemotePolicy
from takeover.storage.schema import ControlSource, EventKind

from .test_loop import PointStation, Tape


class FlakyPolicyServer:
    """Answers health and the first ``good`` infer requests, then swallows every request."""

    def __init__(self, good: int) -> None:
        self.good = good
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)  # ROUTER can stay silent without breaking lockstep
        self.sock.bind("tcp://127.0.0.1:*")
        self.url = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self.stop.is_set():
            if not self.sock.poll(50):
                continue
            ident, empty, payload = self.sock.recv_multipart()
            request = REQUESTS.decode(payload)
            reply: Reply
            if isinstance(request, Health):
                reply = HealthReply("flaky", 0.0, 0, 0, 0, 0.0, 0.0)
            elif isinstance(request, Infer) and self.good > 0:
                self.good -= 1
                actions = np.tile(np.array([0.1, 0, 0, -1], np.float32), (4, 1))
                reply = ActionChunkReply(actions, "flaky", 0.0, request.step, 0, {})
            else:
                continue  # hang
            self.sock.send_multipart([ident, empty, reply.encode()])

    def __enter__(self) -> FlakyPolicyServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close(0)
        self.ctx.term()


class RealClockStation(PointStation):
    def __init__(self) -> None:
        super().__init__(clock=None)  # type: ignore[arg-type]

    def _obs(self):  # type: ignore[no-untyped-def]
        from takeover.app.station.base import Observation

        return Observation(time.monotonic(), self.pos.copy(), self.pos.copy())

    def act(self, action: np.ndarray):  # type: ignore[no-untyped-def]
        self.actions.append(action.copy())
        self.pos += action[:3]
        return self._obs()


def run_against_hung_server(good: int, lead: int) -> tuple[Tape, int, np.ndarray]:
    """40 periods at 50 Hz against a server that answers ``good`` chunks, then hangs:
    (tape, step of the one hold, step times)."""
    safety = SafetyConfig(policy_timeout_ms=300.0)
    with FlakyPolicyServer(good=good) as server:
        policy = RemotePolicy(server.url, timeout_s=5.0, infer_timeout_s=safety.policy_timeout_ms / 1000)
        policy.connect()
        try:
            tape = Tape()
            config = LoopConfig(rate_hz=50.0, max_steps=40, safety=safety, inference_lead_steps=lead)
            ControlLoop(RealClockStation(), policy, [], [tape], config, clock=Clock()).run_episode()
        finally:
            policy.close()
    holds = [e for e in tape.events if e.kind is EventKind.HOLD]
    assert len(holds) == 1 and "policy" in holds[0].reason
    held_at = holds[0].step
    assert {s.control_source for s in tape.steps[held_at:]} == {ControlSource.HOLD}
    return tape, held_at, np.array([s.t for s in tape.steps])


def test_hung_policy_server_holds_within_the_watchdog_limit() -> None:
    _, _, t = run_against_hung_server(good=2, lead=0)
    # The one stalled request cost at most the watchdog limit (plus scheduling), not the 5 s timeout.
    assert np.max(np.diff(t)) < 0.3 + 0.2
    # ... and only once: while held, the loop keeps its rate instead of waiting every period.
    assert np.sum(np.diff(t) > 0.1) == 1


def test_hung_policy_server_asked_ahead_holds_within_the_limit_and_stalls_at_most_once() -> None:
    """The same over real sockets with the request sent ahead from the worker thread."""
    tape, held_at, t = run_against_hung_server(good=3, lead=2)
    # Three answered chunks were executed back to back before the hold, on time.
    assert held_at >= 2 * 4 and {s.control_source for s in tape.steps[:held_at]} == {ControlSource.POLICY}
    assert np.max(np.diff(t)) < 0.3 + 0.2
    assert np.sum(np.diff(t) > 0.1) <= 1
