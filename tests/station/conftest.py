"""A fake robot behind a station server on loopback, for the protocol tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from takeover.app.station.bridge import BridgeStation
from takeover.app.station.fake_robot import FakeRobot, FakeRobotConfig
from takeover.app.station.server import StationServer, StationServerConfig


def serving(robot: FakeRobot) -> Iterator[StationServer]:
    """A station server for ``robot`` in a thread, on a free loopback port; stopped afterwards."""
    station = BridgeStation(robot, FakeRobotConfig().bridge_config())
    srv = StationServer(station, StationServerConfig(endpoint="tcp://127.0.0.1:*", poll_ms=20))
    srv.bind()
    thread = threading.Thread(target=srv.serve_forever, name="station-server", daemon=True)
    thread.start()
    yield srv
    srv.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()
    srv.close()


@pytest.fixture
def robot() -> FakeRobot:
    return FakeRobot()


@pytest.fixture
def server(robot: FakeRobot) -> Iterator[StationServer]:
    yield from serving(robot)
