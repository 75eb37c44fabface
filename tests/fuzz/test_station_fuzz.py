"""Fuzz the station server (fake robot through the bridge, and the MuJoCo simulation).

Every generated request is wrong in some way: random bytes, truncated msgpack, a wrong wire
version, wrong, missing or extra types and fields, wrong array shapes and dtypes, shapes written
loosely (``"4"``, ``[4.0]``, ``{"4": 0}``...), NaN/Inf, actions out of limits, malformed array
encodings, bad client ids and sequence numbers, multi-part frames, oversized payloads. Each must
get a readable error reply, the server must keep serving, and the robot must not move.
"""

from __future__ import annotations

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


def _valid_client(c: Any) -> bool:
    return (
        isinstance(c, str)
        and 0 < len(c) <= 64
        and all(ch.isascii() and (ch.isalnum() or ch in "_.:-") for ch in c)
    )


def _valid_seq(s: Any) -> bool:
    return type(s) is int and 1 <= s < 2**63


def reset(seq: int) -> bytes:
    return encode({"type": "reset", "client": "fz", "seq": seq, "seed": 1})


def act(seq: int) -> bytes:
    return encode({"type": "act", "client": "fz", "seq": seq, "action": GOOD})


def station_schema(fz: SimpleNamespace) -> Any:
    return fz.Schema(
        valid=(
            {"type": "health"},
            {"type": "observe"},
            {"type": "expert"},
            {"type": "reset", "client": "fz", "seq": 7, "seed": 3},
            {"type": "reset", "client": "fz", "seq": 8, "seed": None},
            {"type": "act", "client": "fz", "seq": 9, "action": GOOD},
        ),
        bad_fields={
            "action": st.one_of(fz.values, fz.any_arrays, fz.malformed_nd).filter(
                lambda a: not _valid_action(a)
            ),
            "seed": st.one_of(fz.values, st.integers(-(2**63), 2**64 - 1)).filter(
                lambda s: not _valid_seed(s)
            ),
            "client": st.one_of(fz.values, st.text(max_size=80)).filter(lambda c: not _valid_client(c)),
            "seq": st.one_of(fz.values, st.integers(-(2**63), 2**64 - 1)).filter(lambda s: not _valid_seq(s)),
        },
        required=frozenset({"action", "seed", "client", "seq"}),
    )


def _fuzz(fz: SimpleNamespace, live: Any, n: int) -> int:
    """Send ``n`` generated wrong requests; return how many were sent."""
    sent = 0

    @settings(fz.FUZZ, max_examples=n)
    @given(frames=fz.bad_requests(station_schema(fz)))
    def run(frames: list[bytes]) -> None:
        nonlocal sent
        sent += 1
        fz.readable_error(live.ask(frames))

    run()
    return sent


def _oversize(fz: SimpleNamespace, live: Any) -> int:
    """Oversized requests; return how many were sent."""
    for size in OVERSIZE:
        reason = fz.readable_error(live.ask([b"\x92" + b"\x00" * (size - 1)]))
        assert "exceeds" in reason
    # beyond the socket's MAXMSGSIZE ZeroMQ drops the message and the peer: no reply, no harm
    live.sock.setsockopt(zmq.RCVTIMEO, 1000)
    live.sock.send(b"\x00" * (MAX_MESSAGE_BYTES + 1024))
    with pytest.raises(zmq.Again):
        live.sock.recv()
    live.reconnect()
    return len(OVERSIZE) + 1


def test_station_server_with_fake_robot(fz: SimpleNamespace) -> None:
    robot = FakeRobot()
    station = BridgeStation(robot, FakeRobotConfig().bridge_config())
    server = StationServer(station, StationServerConfig(endpoint="tcp://127.0.0.1:*", poll_ms=20))
    live = fz.start_live(server)
    try:
        assert live.ask([reset(seq=1)])["ok"] is True
        before = robot.position
        fuzzed = _fuzz(fz, live, fz.MIN_CASES["station/fake-robot"])
        oversized = _oversize(fz, live)
        assert robot.commands == [], "a refused request moved the robot"
        np.testing.assert_array_equal(robot.position, before)
        assert server.moves == 1 and server.errors == fuzzed + oversized - 1
        assert live.thread.is_alive()
        assert live.ask([act(seq=2)])["ok"] is True  # still serving
        assert len(robot.commands) == 1
    finally:
        fz.stop_live(live)
    assert fuzzed >= fz.MIN_CASES["station/fake-robot"]


@pytest.mark.sim
def test_station_server_with_simulation(fz: SimpleNamespace) -> None:
    from takeover.app.station.metaworld_sim import MetaWorldConfig, MetaWorldStation

    station = MetaWorldStation(MetaWorldConfig(cameras=("corner",), width=32, height=24))
    server = StationServer(station, StationServerConfig(endpoint="tcp://127.0.0.1:*", poll_ms=20))
    live = fz.start_live(server)
    try:
        assert live.ask([reset(seq=1)])["ok"] is True
        data = station._env.data  # the MuJoCo state itself, to prove nothing moved
        before = (data.qpos.copy(), data.qvel.copy(), data.mocap_pos.copy(), station.steps)
        fuzzed = _fuzz(fz, live, fz.MIN_CASES["station/sim"])
        after = (data.qpos.copy(), data.qvel.copy(), data.mocap_pos.copy(), station.steps)
        for b, a in zip(before, after, strict=True):
            np.testing.assert_array_equal(a, b)
        assert server.moves == 1 and live.thread.is_alive()
        reply = live.ask([act(seq=2)])
        assert reply["ok"] is True and station.steps == 1
    finally:
        fz.stop_live(live)
    assert fuzzed >= fz.MIN_CASES["station/sim"]
