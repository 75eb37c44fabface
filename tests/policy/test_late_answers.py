"""Extras belong to their chunk: over a real policy server whose answers are sometimes late, every
chunk the loop uses arrives with its own extra outputs, never with those of an answer the loop gave
up on."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from takeover.app.control.loop import ControlLoop, LoopConfig
from takeover.app.control.pacing import FakeClock
from takeover.app.control.safety import SafetyConfig
from takeover.app.policy.remote import RemotePolicy
from takeover.app.policy.server import PolicyOutput, PolicyServer, ServerConfig
from takeover.storage.schema import EventKind

from ..control.test_loop import Tape
from ..control.test_prefetch import CountingStation

H = 8


class TaggedPolicy:
    """Answer n carries n in every action (z = n / 1000) and in its extras; answers 2 and 3 take
    far longer than the client waits for them."""

    policy_id = "tagged"

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    @property
    def state_dim(self) -> int:
        return 3

    def predict(self, state: np.ndarray) -> PolicyOutput:
        with self.lock:
            self.calls += 1
            n = self.calls
        if n in (2, 3):
            time.sleep(0.35)
        actions = np.tile(np.array([0.01, 0.0, n / 1000.0, -1.0], np.float32), (H, 1))
        return PolicyOutput(actions, {"answer": np.array([float(n)], np.float32)})


@pytest.fixture
def served() -> Iterator[tuple[str, TaggedPolicy]]:
    policy = TaggedPolicy()
    server = PolicyServer(ServerConfig(endpoint="tcp://127.0.0.1:0", state_dim=3), policy)  # type: ignore[arg-type]
    url = server.bind()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url, policy
    server.stop()
    thread.join(timeout=5)
    server.close()


@pytest.mark.parametrize("lead", [0, 2], ids=["synchronous", "ask-ahead"])
def test_every_chunk_is_recorded_with_its_own_extras(served: tuple[str, TaggedPolicy], lead: int) -> None:
    url, server_policy = served
    policy = RemotePolicy(url, timeout_s=2.0, infer_timeout_s=0.1)
    policy.connect()
    clock = FakeClock()
    tape = Tape()
    safety = SafetyConfig(policy_timeout_ms=100.0, ee_delta_scale=1.0, max_step_m=2.0)
    cfg = LoopConfig(rate_hz=50.0, max_steps=120, inference_lead_steps=lead, safety=safety)
    loop = ControlLoop(CountingStation(clock), policy, [], [tape], cfg, clock)
    try:
        loop.run_episode()
    finally:
        loop.close()
        policy.close()
    assert server_policy.calls >= 4  # the late answers came back, and the loop asked again after them
    assert any(e.kind is EventKind.HOLD and "policy" in e.reason for e in tape.events)
    paired = [
        (s.index, float(s.extras["answer"][0]), float(s.proposed_action[2])) for s in tape.steps if s.extras
    ]
    assert len(paired) >= 2
    for index, answer, proposed_z in paired:
        # The raw proposal of the period a chunk arrived in comes from that very chunk.
        assert proposed_z == pytest.approx(answer / 1000.0), f"step {index}: extras of answer {answer}"
    used = {answer for _, answer, _ in paired}
    assert not used & {2.0, 3.0}, "an answer the loop gave up on was used"
    assert loop.feed is not None and (loop.feed.prefetch is None or not loop.feed.prefetch.running)
