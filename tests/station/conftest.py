"""A fake robot behind a station server on loopback, for the protocol tests; clocks that are off."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pytest

from takeover.app.station.bridge import BridgeStation
from takeover.app.station.fake_robot import FakeRobot, FakeRobotConfig
from takeover.app.station.server import StationServer, StationServerConfig


@dataclass(frozen=True)
class SkewedClock:
    """A robot computer's monotonic clock: ``t0 + skew_s + (1 + drift) * (t - t0)`` for the engine's
    ``t`` (this process's ``time.monotonic``), so it is ``skew_s`` ahead at ``t0`` and drifts."""

    skew_s: float
    drift: float
    t0: float = field(default_factory=time.monotonic)

    def __call__(self) -> float:
        return self.t0 + self.skew_s + (1.0 + self.drift) * (time.monotonic() - self.t0)

    def engine_time(self, station_t: np.ndarray) -> np.ndarray:
        """The engine's time at which this clock read ``station_t`` (exact inverse)."""
        return self.t0 + (np.asarray(station_t, dtype=np.float64) - self.t0 - self.skew_s) / (
            1.0 + self.drift
        )

    def offset_at(self, engine_t: float) -> float:
        """This clock minus the engine's, at engine time ``engine_t``."""
        return self.skew_s + self.drift * (engine_t - self.t0)


def serving(robot: FakeRobot, clock: Callable[[], float] = time.monotonic) -> Iterator[StationServer]:
    """A station server for ``robot`` in a thread, on a free loopback port; stopped afterwards. The
    robot, its bridge and the server all read ``clock``, as on one robot computer."""
    station = BridgeStation(robot, FakeRobotConfig().bridge_config(), clock=clock)
    srv = StationServer(station, StationServerConfig(endpoint="tcp://127.0.0.1:*", poll_ms=20), clock=clock)
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
