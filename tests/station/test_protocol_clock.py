"""The station's clock on the wire: in every reply, the ``clock`` request, and the rebasing client."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from takeover.app.net.messages import record_to_wire
from takeover.app.net.rpc import ReplySocket, serve_requests
from takeover.app.net.testing import RawClient
from takeover.app.net.wire import WireError, encode
from takeover.app.station.bridge import BridgeStation
from takeover.app.station.fake_robot import FakeRobot, FakeRobotConfig
from takeover.app.station.protocol import HealthReply, ObservationReply
from takeover.app.station.remote import RemoteStation, StationRejectedError
from takeover.app.station.server import StationServer

from .conftest import SkewedClock, serving

GOOD = np.array([0.5, -0.5, 0.0, 1.0], np.float32)
SKEW_S = 1000.0


@pytest.fixture
def skewed() -> SkewedClock:
    return SkewedClock(SKEW_S, 0.0)


@pytest.fixture
def skewed_server(skewed: SkewedClock) -> Iterator[StationServer]:
    yield from serving(FakeRobot(clock=skewed), skewed)


def test_every_reply_carries_the_station_clock(skewed_server: StationServer, skewed: SkewedClock) -> None:
    act = {"type": "act", "client": "raw", "seq": 2, "action": GOOD}
    requests = [
        {"type": "health"},
        {"type": "clock"},
        {"type": "reset", "client": "raw", "seq": 1, "seed": None},
        act,
        {"type": "observe"},
        {"type": "expert"},
    ]
    with RawClient(skewed_server.endpoint) as raw:
        for request in requests:
            before = skewed()
            reply = raw.ask(encode(request))
            after = skewed()
            assert reply["ok"] is True, reply
            clock = reply["clock"]
            assert set(clock) == {"received", "replied"}
            assert before <= clock["received"] <= clock["replied"] <= after, request
            if request is act:
                first = clock
        replayed = raw.ask(encode(act))  # a retry gets the first reply, with the first readings
    assert replayed["clock"] == first
    assert skewed_server.moves == 2 and skewed_server.ledger.replayed == 1  # 'clock' moves nothing


def test_a_reply_must_carry_the_clock_and_nothing_the_client_adds(skewed_server: StationServer) -> None:
    with RawClient(skewed_server.endpoint) as raw:
        reply = raw.ask(encode({"type": "observe"}))
    body = {k: v for k, v in reply.items() if k != "clock"}
    with pytest.raises(WireError, match=r"missing field\(s\) 'clock'"):
        ObservationReply.decode(encode(body))
    with pytest.raises(WireError, match="the station's clock readings must be finite"):
        ObservationReply.decode(encode({**reply, "clock": {"received": float("nan"), "replied": 1.0}}))
    added = {**reply, "obs": {**reply["obs"], "station_times": None}}
    with pytest.raises(WireError, match=r"unexpected field\(s\) 'station_times' in obs"):
        ObservationReply.decode(encode(added))
    assert ObservationReply.decode(encode(reply)).obs.station_times is None


def test_remote_station_rebases_every_time_onto_its_own_clock(skewed_server: StationServer) -> None:
    with RemoteStation(skewed_server.endpoint, timeout_s=5.0, clock_burst=8) as remote:
        at_connect = remote.clock_estimate()
        assert at_connect is not None and at_connect.samples == 1 + 8  # health, then the burst
        assert at_connect.offset_s == pytest.approx(SKEW_S, abs=at_connect.uncertainty_s)
        for obs in (remote.reset(), remote.act(GOOD), remote.observe()):
            now = time.monotonic()
            times = obs.station_times
            assert times is not None
            assert now - 0.5 < obs.t <= now  # the engine's clock, not 1000 s ahead
            assert times.t == pytest.approx(obs.t + SKEW_S, abs=times.estimate.uncertainty_s)
            assert times.estimate.at == obs.t and times.estimate.uncertainty_s < 0.05
            assert obs.image_times["fake"] == pytest.approx(times.image_times["fake"] - SKEW_S, abs=0.05)
            assert obs.t - 0.05 < obs.image_times["fake"] <= now
        estimate = remote.clock_estimate()
        assert estimate is not None and estimate.samples == 1 + 8 + 8 + 3  # the reset's own burst


def test_a_bare_clock_round_trip_follows_an_act_every_interval(skewed_server: StationServer) -> None:
    with RemoteStation(skewed_server.endpoint, timeout_s=5.0, clock_burst=4, clock_interval_s=0.2) as remote:
        remote.reset()
        taken = remote.sync.total
        remote.act(GOOD)
        assert remote.sync.total == taken + 1  # the act's own round trip
        time.sleep(0.25)
        remote.act(GOOD)
        assert remote.sync.total == taken + 3  # and a bare one after it
    with pytest.raises(ValueError, match="clock_interval_s must be positive"):
        RemoteStation(skewed_server.endpoint, clock_interval_s=0.0)


def test_a_server_before_the_clock_is_refused_with_its_protocol(robot: FakeRobot) -> None:
    """A protocol 2 server answers 'health' without its clock: the client says which protocol each
    side speaks instead of failing on the missing field."""
    info = BridgeStation(robot, FakeRobotConfig().bridge_config()).info
    old = record_to_wire(
        HealthReply(protocol=2, info=info, uptime_s=1.0, served=0, errors=0, moves=0, replayed=0, curve=False)
    )
    del old["clock"]
    sock = ReplySocket.bind("tcp://127.0.0.1:*", None, "old station")
    stop = threading.Event()
    answer = encode({"type": "health", "ok": True, **old})
    thread = threading.Thread(target=serve_requests, args=(sock.sock, lambda _: answer, stop, 20))
    thread.start()
    try:
        with pytest.raises(StationRejectedError, match=r"speaks protocol 2; this client speaks 3"):
            RemoteStation(sock.endpoint, timeout_s=2.0).connect()
    finally:
        stop.set()
        thread.join()
        sock.close()
