"""CURVE on the station server (on loopback): only clients on the allow-list get replies."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from takeover.app.net import curve
from takeover.app.station.bridge import BridgeStation
from takeover.app.station.fake_robot import FakeRobot, FakeRobotConfig
from takeover.app.station.protocol import STATION_PROTOCOL
from takeover.app.station.remote import RemoteStation, StationUnavailableError
from takeover.app.station.server import StationServer, StationServerConfig


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    for name in ("server", "operator", "stranger"):
        curve.generate_keypair(tmp_path, name)
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "operator.key").write_text((tmp_path / "operator.key").read_text())
    return tmp_path


@pytest.fixture
def robot() -> FakeRobot:
    return FakeRobot()


@pytest.fixture
def secured(keys: Path, robot: FakeRobot) -> Iterator[StationServer]:
    config = StationServerConfig(
        endpoint="tcp://127.0.0.1:*",
        poll_ms=20,
        curve_secret_key=str(keys / "server.key_secret"),
        curve_allowed_clients=(str(keys / "allowed"),),
    )
    srv = StationServer(BridgeStation(robot, FakeRobotConfig().bridge_config()), config)
    srv.bind()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.stop()
    thread.join(timeout=5)
    srv.close()


def _client_keys(keys: Path, name: str) -> curve.ClientKeys:
    return curve.ClientKeys.load(str(keys / f"{name}.key_secret"), str(keys / "server.key"))


def test_key_files_are_z85_and_private(keys: Path) -> None:
    for path in (keys / "server.key", keys / "server.key_secret"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert len(path.read_text().strip()) == 40
    secret = curve.load_secret_key(keys / "server.key_secret")
    assert curve.load_public_key(keys / "server.key") == curve.ServerKeys(secret, frozenset()).public
    with pytest.raises(curve.CurveKeyError, match="already exists"):
        curve.generate_keypair(keys, "server")


def test_a_readable_secret_key_is_refused(keys: Path) -> None:
    path = keys / "server.key_secret"
    os.chmod(path, 0o644)
    with pytest.raises(curve.CurveKeyError, match="chmod 600"):
        curve.load_secret_key(path)


def test_malformed_and_missing_keys_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    with pytest.raises(curve.CurveKeyError, match="40-character Z85"):
        curve.load_public_key(bad)
    with pytest.raises(curve.CurveKeyError, match="does not exist"):
        curve.load_public_key(tmp_path / "missing.key")
    (tmp_path / "empty").mkdir()
    with pytest.raises(curve.CurveKeyError, match="no client public keys"):
        curve.load_allowed_keys((str(tmp_path / "empty"),))
    bad.write_text("~" * 40)
    with pytest.raises(curve.CurveKeyError, match="not valid Z85"):
        curve.load_public_key(bad)


def test_the_allowed_client_is_served(secured: StationServer, keys: Path, robot: FakeRobot) -> None:
    with RemoteStation(secured.endpoint, timeout_s=5.0, keys=_client_keys(keys, "operator")) as remote:
        assert remote.health().curve is True
        remote.reset()
        remote.act(np.array([1, 0, 0, 0], np.float32))
    assert len(robot.commands) == 1


@pytest.mark.parametrize("who", ["no keys", "stranger"])
def test_an_unauthenticated_client_gets_no_reply(
    secured: StationServer, keys: Path, robot: FakeRobot, who: str
) -> None:
    client_keys = None if who == "no keys" else _client_keys(keys, "stranger")
    remote = RemoteStation(secured.endpoint, timeout_s=0.5, keys=client_keys)
    with pytest.raises(StationUnavailableError, match="no station answered"):
        remote.connect()
    assert robot.commands == [] and secured.served == 0
    # the server is unharmed: the allowed client still gets answers
    with RemoteStation(secured.endpoint, timeout_s=5.0, keys=_client_keys(keys, "operator")) as ok:
        assert ok.health().protocol == STATION_PROTOCOL
