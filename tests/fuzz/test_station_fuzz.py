"""Fuzz the station server (fake robot through the bridge, and the MuJoCo simulation).

Every generated request is wrong in some way: random bytes, truncated msgpack, a wrong wire
version, wrong or missing types and fields, wrong array shapes and dtypes, NaN/Inf, actions out
of limits, malformed array encodings, multi-part frames, oversized payloads. Each must get a
readable error reply, the server must keep serving, and the robot must not move.
"""

from __future__ import annotations

import collections
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from takeover.app.net.wire import MAX_MESSAGE_BYTES, encode
from takeover.app.station.bridge import BridgeStation
from takeover.app.station.fake_robot import FakeRobot, FakeRobotConfig
from takeover.app.station.protocol import MAX_REQUEST_BYTES, MAX_SEED
from takeover.app.station.server import StationServer, StationServerConfig

GOOD = np.array([0.2, -0.1, 0.3, 1.0], np.float32)
FAKE_CASES = 450
SIM_CASES = 200
OVERSIZE = [MAX_REQUEST_BYTES + 1, 8 * 1024 * 1024, MAX_MESSAGE_BYTES - 1, MAX_MESSAGE_BYTES]


def _valid_action(a: Any) -> bool:
    return (
        isinstance(a, np.ndarray)
        and a.dtype.kind == "f"
        and a.dtype.itemsize == 4
        and a.shape == (4,)
        and bool(np.all(np.isfinite(a)))
        and bool(np.all(np.abs(a.astype(np.float64)) <= 1.0))
    )


def _valid_seed(s: Any) -> bool:
    return s is None or (type(s) is int and 0 <= s <= MAX_SEED)


def station_schema(fz: SimpleNamespace) -> Any:
    return fz.Schema(
        valid=(
            {"type": "health"},
            {"type": "observe"},
            {"type": "expert"},
            {"type": "reset", "seed": 3},
            {"type": "reset", "seed": None},
            {"type": "act", "action": GOOD},
        ),
        bad_fields={
            "action": st.one_of(fz.values, fz.any_arrays, fz.malformed_nd).filter(
                lambda a: not _valid_action(a)
            ),
            "seed": st.one_of(fz.values, st.integers(-(2**63), 2**64 - 1)).filter(
                lambda s: not _valid_seed(s)
            ),
        },
        required=frozenset({"action"}),
        strict=True,
    )


def _fuzz(fz: SimpleNamespace, live: Any, cases: collections.Counter[str], name: str, n: int) -> None:
    @settings(fz.FUZZ, max_examples=n)
    @given(frames=fz.bad_requests(station_schema(fz)))
    def run(frames: list[bytes]) -> None:
        cases[name] += 1
        fz.readable_error(live.ask(frames))

    run()


def _oversize(fz: SimpleNamespace, live: Any, cases: collections.Counter[str], name: str) -> None:
    for size in OVERSIZE:
        cases[name] += 1
        reason = fz.readable_error(live.ask([b"\x92" + b"\x00" * (size - 1)]))
        assert "exceeds" in reason
    # beyond the socket's MAXMSGSIZE ZeroMQ drops the message and the peer: no reply, no harm
    cases[name] += 1
    live.sock.setsockopt(zmq.RCVTIMEO, 1000)
    live.sock.send(b"\x00" * (MAX_MESSAGE_BYTES + 1024))
    with pytest.raises(zmq.Again):
        live.sock.recv()
    live.reconnect()


def test_station_server_with_fake_robot(fz: SimpleNamespace, cases: collections.Counter[str]) -> None:
    robot = FakeRobot()
    station = BridgeStation(robot, FakeRobotConfig().bridge_config())
    server = StationServer(station, StationServerConfig(endpoint="tcp://127.0.0.1:*", poll_ms=20))
    live = fz.start_live(server)
    try:
        assert live.ask([encode({"type": "reset", "seed": 1})])["ok"] is True
        before = robot.position
        _fuzz(fz, live, cases, "station/fake-robot", FAKE_CASES)
        _oversize(fz, live, cases, "station/fake-robot")
        assert robot.commands == [], "a refused request moved the robot"
        np.testing.assert_array_equal(robot.position, before)
        assert server.moves == 1 and server.errors == cases["station/fake-robot"] - 1
        assert live.thread.is_alive()
        assert live.ask([encode({"type": "act", "action": GOOD})])["ok"] is True  # still serving
        assert len(robot.commands) == 1
    finally:
        fz.stop_live(live)
    assert cases["station/fake-robot"] >= FAKE_CASES


@pytest.mark.sim
def test_station_server_with_simulation(fz: SimpleNamespace, cases: collections.Counter[str]) -> None:
    from takeover.app.station.metaworld_sim import MetaWorldConfig, MetaWorldStation

    station = MetaWorldStation(MetaWorldConfig(cameras=("corner",), width=32, height=24))
    server = StationServer(station, StationServerConfig(endpoint="tcp://127.0.0.1:*", poll_ms=20))
    live = fz.start_live(server)
    try:
        assert live.ask([encode({"type": "reset", "seed": 4})])["ok"] is True
        data = station._env.data  # the MuJoCo state itself, to prove nothing moved
        before = (data.qpos.copy(), data.qvel.copy(), data.mocap_pos.copy(), station.steps)
        _fuzz(fz, live, cases, "station/sim", SIM_CASES)
        after = (data.qpos.copy(), data.qvel.copy(), data.mocap_pos.copy(), station.steps)
        for b, a in zip(before, after, strict=True):
            np.testing.assert_array_equal(a, b)
        assert server.moves == 1 and live.thread.is_alive()
        reply = live.ask([encode({"type": "act", "action": GOOD})])
        assert reply["ok"] is True and station.steps == 1
    finally:
        fz.stop_live(live)
    assert cases["station/sim"] >= SIM_CASES
