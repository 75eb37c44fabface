"""Replies reach their sender and moves run at most once, over real sockets.

A peer that does not speak the protocol (raw TCP garbage) must never cost a proper client its
reply, and a client that did not get its reply may send the same numbered request again: the
station executes it once and answers the retry with the first reply.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

import numpy as np
import zmq

from takeover.app.net import wire
from takeover.app.net.testing import RawClient, send_garbage
from takeover.app.station.fake_robot import FakeRobot
from takeover.app.station.remote import RemoteStation
from takeover.app.station.server import StationServer

from .conftest import serving

GOOD = np.array([0.5, -0.5, 0.0, 1.0], np.float32)
ROUNDS = 60


@dataclass
class SlowFirstMove(FakeRobot):
    """A robot whose first commanded move takes ``delay_s`` (a driver that stalls once)."""

    delay_s: float = 0.0

    def send_target(self, ee_target: np.ndarray, gripper: float) -> None:
        if not self.commands:
            time.sleep(self.delay_s)
        super().send_target(ee_target, gripper)


def test_garbage_tcp_peers_never_cost_a_client_its_reply(server: StationServer, robot: FakeRobot) -> None:
    rng = random.Random(7)
    # One attempt per request: a lost reply would surface here instead of being retried away.
    with RemoteStation(server.endpoint, timeout_s=2.0, attempts=1) as remote:
        remote.reset(seed=1)
        for _ in range(ROUNDS):
            send_garbage(server.endpoint, rng)
            remote.act(GOOD)  # raises StationUnavailableError if its reply went elsewhere
        health = remote.health()
        assert remote.resent == 0
    assert len(robot.commands) == ROUNDS and health.moves == ROUNDS + 1 and health.replayed == 0


def test_the_garbage_is_the_kind_that_cost_a_rep_socket_its_replies() -> None:
    """The peers above are not harmless noise: beside a bare REP socket (what the servers used
    before), the same bytes make requests that were received lose their replies."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    rep = ctx.socket(zmq.REP)
    rep.setsockopt(zmq.LINGER, 0)
    rep.bind("tcp://127.0.0.1:*")
    endpoint = rep.getsockopt_string(zmq.LAST_ENDPOINT)
    stop = threading.Event()
    received = 0

    def serve() -> None:
        nonlocal received
        while not stop.is_set():
            if rep.poll(20):
                rep.recv()
                received += 1
                rep.send(wire.encode({"type": "ok"}))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    lost = 0
    try:
        for _ in range(20):
            send_garbage(endpoint)
            with RawClient(endpoint, timeout_ms=300) as client:
                try:
                    client.send(wire.encode({"type": "act"}))
                except zmq.Again:
                    lost += 1
    finally:
        stop.set()
        thread.join(timeout=5)
        rep.close(0)
        ctx.term()
    assert received == 20 and lost > 0


def test_a_retried_act_never_moves_the_robot_twice() -> None:
    robot = SlowFirstMove(delay_s=2.0)
    for server in serving(robot):
        # 2 attempts sharing 3 s: the first gives up after 1.5 s, while the robot is still
        # moving; the retry carries the same number and gets the first move's reply.
        with RemoteStation(server.endpoint, timeout_s=3.0, attempts=2) as remote:
            remote.reset(seed=1)
            obs = remote.act(GOOD)
            assert remote.resent == 1
            health = remote.health()
        assert len(robot.commands) == 1, "the retried act moved the robot twice"
        np.testing.assert_allclose(obs.ee_target, robot.commands[0][0])
        assert health.moves == 2 and health.replayed == 1


def _act(client: str, seq: int) -> bytes:
    return wire.encode({"type": "act", "client": client, "seq": seq, "action": GOOD})


def test_numbered_requests_run_once_per_client_and_number(server: StationServer, robot: FakeRobot) -> None:
    with RawClient(server.endpoint) as raw:
        assert raw.ask(wire.encode({"type": "reset", "client": "a", "seq": 1, "seed": None}))["ok"] is True
        first = raw.send(_act("a", 2))
        assert raw.send(_act("a", 2)) == first  # the same bytes again; nothing executed
        assert len(robot.commands) == 1
        stale = raw.ask(_act("a", 1))
        assert stale["ok"] is False and "older than 2, the last one executed: not executed" in stale["error"]
        assert raw.ask(_act("b", 1))["ok"] is True  # another client numbers on its own
        assert raw.ask(_act("a", 3))["ok"] is True
    assert len(robot.commands) == 3 and server.ledger.replayed == 1 and server.moves == 4


def test_a_refusal_by_the_station_is_remembered_too(server: StationServer, robot: FakeRobot) -> None:
    """A numbered request that reached the station is answered the same way when retried, even
    when the station refused it (it may have moved before it failed)."""
    with RawClient(server.endpoint) as raw:
        before_reset = raw.ask(_act("c", 1))
        assert before_reset["ok"] is False and "reset" in before_reset["error"]
        raw.ask(wire.encode({"type": "reset", "client": "d", "seq": 1, "seed": None}))
        assert raw.ask(_act("c", 1)) == before_reset  # not executed now that it could be
    assert robot.commands == []
