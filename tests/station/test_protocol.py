"""The station protocol over real ZeroMQ sockets: server, remote station, errors, timeouts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgpack
import numpy as np
import pytest
import zmq

from takeover.app.net.testing import RawClient
from takeover.app.net.wire import MAX_ERROR_CHARS, WireError, encode
from takeover.app.station.bridge import BridgeStation
from takeover.app.station.fake_robot import FakeRobot, FakeRobotConfig
from takeover.app.station.protocol import STATION_PROTOCOL
from takeover.app.station.remote import RemoteStation, StationRejectedError, StationUnavailableError
from takeover.app.station.server import StationServer, StationServerConfig

GOOD = np.array([0.5, -0.5, 0.0, 1.0], np.float32)


@pytest.fixture
def raw(server: StationServer) -> Iterator[RawClient]:
    """A bare REQ socket, to send bytes the client would never produce."""
    with RawClient(server.endpoint) as client:
        yield client


def test_remote_station_round_trip(server: StationServer, robot: FakeRobot) -> None:
    with RemoteStation(server.endpoint, timeout_s=5.0) as remote:
        info = remote.info
        assert (info.name, info.action_dim, info.state_dim, info.cameras) == ("fake-bridge", 4, 7, ("fake",))
        assert info.workspace_low is not None and info.workspace_high is not None  # the bridge's box
        first = remote.reset(seed=3)
        assert first.state.shape == (7,) and first.images["fake"].shape == (48, 64, 3)
        assert first.images["fake"].dtype == np.uint8 and "fake" in first.image_times
        obs = remote.act(GOOD)
        np.testing.assert_allclose(obs.ee_target, first.ee_target + np.array([0.005, -0.005, 0.0]), atol=1e-6)
        assert len(robot.commands) == 1 and robot.commands[0][1] == 1.0
        seen = remote.observe()
        assert seen.t >= obs.t and len(robot.commands) == 1  # observing never commands
        assert remote.expert_action() is None
        health = remote.health()
    assert health.protocol == STATION_PROTOCOL and health.moves == 2 and health.replayed == 0
    assert health.errors == 0 and health.curve is False


def act(action: Any, seq: int = 1, **more: Any) -> bytes:
    """An 'act' request as any client might send it (nothing checked on this side)."""
    return encode({"type": "act", "client": "raw", "seq": seq, "action": action, **more})


def reset(seed: Any, seq: int = 1) -> bytes:
    return encode({"type": "reset", "client": "raw", "seq": seq, "seed": seed})


def legacy_array(a: np.ndarray) -> dict[str, Any]:
    """An array as wire version 1 sent it: a map, which version 2 does not take for an array."""
    return {"__nd__": True, "dtype": a.dtype.str, "shape": list(a.shape), "data": a.tobytes()}


BAD: list[tuple[Any, str]] = [
    (b"\xc1 not msgpack", "undecodable message: not msgpack"),
    (msgpack.packb([1, 2]), "must be a map, got a list"),
    (msgpack.packb({"type": "act"}), "needs 'v', the wire version"),
    (msgpack.packb({"v": 1, "type": "act"}), r"wire version 1 is not supported \(expected 2\)"),
    (encode({"type": "fly"}), "unknown message type 'fly'"),
    (encode({"type": "x" * 10_000}), r"unknown message type 'xxx.*\(10000 characters\)"),
    (encode({"type": "act"}), r"missing field\(s\) 'client', 'seq', 'action'"),
    (act([0.0] * 4), "'action' must be an array, got a list"),
    (act(legacy_array(GOOD)), "'action' must be an array, got a map"),
    (act(np.zeros(4, np.float64)), "dtype float32"),
    (act(np.zeros(4, np.int32)), "dtype float32"),
    (act(np.zeros(3, np.float32)), r"shape \(4,\)"),
    (act(np.zeros((1, 4), np.float32)), r"shape \(4,\)"),
    (act(np.array([0, np.nan, 0, 0], np.float32)), "NaN or Inf at index 1"),
    (act(np.array([0, 0, np.inf, 0], np.float32)), "NaN or Inf at index 2"),
    (act(np.array([0, 0, 0, 1.5], np.float32)), "outside the station's limits"),
    (act(GOOD, speed=10), r"unexpected field\(s\) 'speed'"),
    (act(GOOD, seq=0), r"'seq' must be in 1\.\."),
    (act(GOOD, seq=1.0), "'seq' must be an integer, got a float 1.0"),
    (act(GOOD, seq=True), "'seq' must be an integer, got a bool True"),
    (encode({"type": "act", "client": "", "seq": 1, "action": GOOD}), "'client' must be 1 to 64"),
    (encode({"type": "act", "client": "a b", "seq": 1, "action": GOOD}), "'client' must be 1 to 64"),
    (reset(-1), "'seed' must be nil or an integer"),
    (reset("7"), "'seed' must be nil or an integer, got a string '7'"),
    (reset(2**40), "'seed' must be nil or an integer"),
    (encode({"type": "health", "ok": True}), "carries no 'ok'"),
    ([encode({"type": "health"}), b"more"], "single-part"),
    (b"\x00" * (1024 * 1024 + 1), "exceeds the station limit"),
]


@pytest.mark.parametrize(("payload", "reason"), BAD)
def test_bad_requests_are_refused_readably_and_never_move_the_robot(
    raw: RawClient, server: StationServer, robot: FakeRobot, payload: Any, reason: str
) -> None:
    assert raw.ask(reset(1, seq=1))["ok"] is True
    moved = len(robot.commands)
    reply = raw.ask(payload)
    assert reply["ok"] is False and reply["type"] == "error"
    assert re.search(reason, reply["error"]), reply["error"]
    assert len(reply["error"]) <= MAX_ERROR_CHARS
    assert len(robot.commands) == moved and server.errors == 1
    assert raw.ask(act(GOOD, seq=2))["ok"] is True  # still serving


def test_act_before_reset_is_refused_by_the_station(raw: RawClient, robot: FakeRobot) -> None:
    reply = raw.ask(act(GOOD))
    assert reply["ok"] is False and "call reset() before act()" in reply["error"]
    reply = raw.ask(encode({"type": "observe"}))
    assert reply["ok"] is True  # the bridge reads its sensors without a reset
    assert robot.commands == []


def test_error_replies_raise_rejected(server: StationServer) -> None:
    with RemoteStation(server.endpoint, timeout_s=5.0) as remote:
        with pytest.raises(StationRejectedError, match="before act"):
            remote.act(GOOD)
        remote.reset()
        with pytest.raises(StationRejectedError, match="outside the station's limits"):
            remote.act(np.array([3, 0, 0, 0], np.float32))
        assert remote.act(GOOD).state.shape == (7,)


def _dead_endpoint() -> str:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.REP)
    sock.bind("tcp://127.0.0.1:*")
    url = sock.getsockopt(zmq.LAST_ENDPOINT)
    sock.close(0)
    ctx.term()
    assert isinstance(url, bytes)
    return url.decode()


def test_timeouts_raise_a_clear_error() -> None:
    url = _dead_endpoint()
    remote = RemoteStation(url, timeout_s=0.2)
    with pytest.raises(StationUnavailableError, match=rf"no station answered 'health' at {url} within 0.2 s"):
        remote.connect()
    with pytest.raises(RuntimeError, match="not connected"):
        remote.reset()
    with pytest.raises(ValueError, match="timeout_s"):
        RemoteStation(url, timeout_s=0)


def test_server_config_keeps_to_loopback() -> None:
    with pytest.raises(ValueError, match="not on loopback"):
        StationServerConfig(endpoint="tcp://0.0.0.0:5556")
    with pytest.raises(ValueError, match="needs CURVE keys"):
        StationServerConfig(endpoint="tcp://0.0.0.0:5556", allow_remote=True)
    with pytest.raises(ValueError, match="both a server secret key"):
        StationServerConfig(curve_secret_key="server.key_secret")
    cfg = StationServerConfig(
        endpoint="tcp://0.0.0.0:5556",
        allow_remote=True,
        curve_secret_key="server.key_secret",
        curve_allowed_clients=("clients/",),
    )
    assert cfg.uses_curve
    with pytest.raises(ValueError, match="must start with"):
        StationServerConfig(endpoint="http://127.0.0.1:5556")


def test_server_closes_the_station_and_stops_the_robot(robot: FakeRobot) -> None:
    srv = StationServer(BridgeStation(robot, FakeRobotConfig().bridge_config()))
    assert not robot.connected  # no I/O in the constructor
    srv.close()
    assert robot.stops == 0


def test_station_info_carries_an_optional_workspace_box_and_checks_it() -> None:
    from takeover.app.net.messages import record_from_wire, record_to_wire
    from takeover.app.station.base import StationInfo
    from takeover.app.station.protocol import ProtocolError, check_info

    plain = StationInfo("s", "r", "t", 4, 7, ("cam",), 20.0, (-1.0,) * 4, (1.0,) * 4)
    assert record_to_wire(plain)["workspace_low"] is None
    assert check_info(record_from_wire(StationInfo, record_to_wire(plain))) == plain
    without = {k: v for k, v in record_to_wire(plain).items() if not k.startswith("workspace")}
    assert record_from_wire(StationInfo, without) == plain  # the box is optional on the wire
    older = {k: v for k, v in record_to_wire(plain).items() if k != "time_limit_s"}
    assert record_from_wire(StationInfo, older).time_limit_s == 0.0  # a station that gives no limit
    boxed = StationInfo(
        "s", "r", "t", 4, 7, ("cam",), 20.0, (-1.0,) * 4, (1.0,) * 4, (-0.5, 0.3, 0.05), (0.5, 0.9, 0.5)
    )
    assert record_from_wire(StationInfo, msgpack.unpackb(msgpack.packb(record_to_wire(boxed)))) == boxed
    for change, error, reason in [
        ({"workspace_low": [0.0, 0.0]}, WireError, "must be nil or a list of 3, got 2 items"),
        ({"workspace_low": [0.0, 0, 0.0]}, WireError, r"'workspace_low\[1\]' must be a float"),
        ({"workspace_low": [0.0, float("nan"), 0.0]}, ProtocolError, "finite"),
        ({"workspace_low": [0.6, 0.0, 0.0]}, ProtocolError, "below"),
        ({"workspace_high": "up"}, WireError, "must be nil or a list of 3"),
        ({"workspace_high": None}, ProtocolError, "together"),
        ({"rate_hz": 20}, WireError, "'rate_hz' must be a float, got an integer 20"),
        ({"action_dim": 4.0}, WireError, "'action_dim' must be an integer"),
        ({"cameras": "cam"}, WireError, "'cameras' must be a list"),
        ({"time_limit_s": -1.0}, ProtocolError, "time_limit_s"),
        ({"time_limit_s": float("inf")}, ProtocolError, "time_limit_s"),
    ]:
        with pytest.raises(error, match=reason):
            check_info(record_from_wire(StationInfo, {**record_to_wire(boxed), **change}))
