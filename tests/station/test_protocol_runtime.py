"""A remote station from the configuration, used by the real control loop through the runtime."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from takeover.app.control.loop import LoopConfig
from takeover.app.net import curve
from takeover.app.policy.remote import RemotePolicy
from takeover.app.runtime.compose import Runtime, StartupError, build_station
from takeover.app.runtime.config import AppConfig, ConfigError, StationSection, load_config
from takeover.app.station.bridge import BridgeStation
from takeover.app.station.fake_robot import FakeRobot, FakeRobotConfig
from takeover.app.station.remote import RemoteStation
from takeover.app.station.server import StationServer, StationServerConfig


@pytest.fixture
def robot_url() -> Iterator[tuple[str, FakeRobot]]:
    robot = FakeRobot()
    srv = StationServer(
        BridgeStation(robot, FakeRobotConfig().bridge_config()),
        StationServerConfig("tcp://127.0.0.1:*", poll_ms=20),
    )
    srv.bind()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv.endpoint, robot
    srv.stop()
    thread.join(timeout=5)
    srv.close()


def test_remote_station_config_is_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "takeover.toml"
    path.write_text('[station]\nkind = "remote"\nurl = "tcp://robot-pc:5556"\ntimeout_s = 1.5\n')
    cfg = load_config(path)
    assert (cfg.station.kind, cfg.station.url, cfg.station.timeout_s) == (
        "remote",
        "tcp://robot-pc:5556",
        1.5,
    )
    station = build_station(cfg)  # no I/O yet
    assert isinstance(station, RemoteStation) and station.url == "tcp://robot-pc:5556"
    assert type(build_station(AppConfig())).__name__ == "MetaWorldStation"
    with pytest.raises(ConfigError, match=r"station\.url: the endpoint is empty"):
        StationSection(kind="remote")
    with pytest.raises(ConfigError, match=r"station\.kind must be one of"):
        StationSection(kind="ros")
    with pytest.raises(ConfigError, match="go together"):
        StationSection(kind="remote", url="tcp://x:1", curve_secret_key="me.key_secret")


def test_missing_curve_key_files_are_a_startup_error(tmp_path: Path) -> None:
    cfg = AppConfig(
        station=StationSection(
            kind="remote",
            url="tcp://robot-pc:5556",
            curve_secret_key=str(tmp_path / "me.key_secret"),
            curve_server_key=str(tmp_path / "robot.key"),
        )
    )
    with pytest.raises(StartupError, match=r"station CURVE keys: secret key file .* does not exist"):
        build_station(cfg)
    curve.generate_keypair(tmp_path, "me")
    curve.generate_keypair(tmp_path, "robot")
    station = build_station(cfg)
    assert isinstance(station, RemoteStation) and station.keys is not None


def test_control_loop_runs_on_a_remote_station(tmp_path: Path, robot_url: tuple[str, FakeRobot]) -> None:
    url, robot = robot_url
    cfg = AppConfig(
        station=StationSection(kind="remote", url=url),
        loop=LoopConfig(max_steps=5, paced=False),
    )
    cfg = AppConfig(station=cfg.station, loop=cfg.loop, store=type(cfg.store)(path=str(tmp_path / "store")))
    with Runtime(cfg, use_policy=False) as rt:
        assert rt.loop is not None and isinstance(rt.station, RemoteStation)
        result = rt.loop.run_episode(seed=0)
    assert result.steps == 5
    assert len(robot.commands) == 5  # every step reached the robot, as held actions
    assert robot.closed is False  # the runtime closes its client, not the robot server


class ChunkPolicy:
    policy_id = "chunk-0"

    def predict(self, state: np.ndarray) -> np.ndarray:
        return np.arange(32, dtype=np.float32).reshape(8, 4) / 100.0


def test_remote_policy_cuts_chunks_to_the_open_loop_horizon() -> None:
    from takeover.app.policy.server import PolicyServer, ServerConfig

    server = PolicyServer(ServerConfig("tcp://127.0.0.1:*", poll_ms=20, open_loop_steps=3), ChunkPolicy())
    server.bind()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        policy = RemotePolicy(server.endpoint, 5.0)
        policy.connect()
        try:
            answer = policy.infer(np.zeros(39, np.float32), 0)
        finally:
            policy.close()
    finally:
        server.stop()
        thread.join(timeout=5)
        server.close()
    assert answer.actions.shape == (3, 4) and answer.step == 0 and dict(answer.extras) == {}
    assert policy.policy_id == "chunk-0"
