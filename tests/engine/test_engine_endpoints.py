"""The engine's endpoints keep to the servers' bind policy: loopback or ``ipc://`` unless remote
serving is allowed, CURVE for anything else (and whenever keys are given), a size limit, and
strictly decoded commands. The engine runs for real (`takeover engine`), driving a fake robot
served over the station protocol, with a policy server on loopback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zmq

from takeover.app.engine.protocol import Command, CommandName, CommandReply, Status
from takeover.app.engine.sockets import EngineEndpoints, EngineSockets
from takeover.app.net import curve, wire
from takeover.app.net.messages import RefusedError, decode_reply
from takeover.app.policy.server import PolicyServer, ServerConfig
from takeover.app.station.bridge import BridgeStation
from takeover.app.station.fake_robot import FakeRobot, FakeRobotConfig
from takeover.app.station.server import StationServer, StationServerConfig

Context = zmq.Context[zmq.Socket[bytes]]


def test_endpoints_keep_to_loopback_or_ipc_unless_remote_is_allowed(tmp_path: Path) -> None:
    local = EngineEndpoints("tcp://127.0.0.1:0", f"ipc://{tmp_path}/command")
    assert local.command.startswith("ipc://")
    with pytest.raises(ValueError, match=r"'tcp://0.0.0.0:7000' is not on loopback.*--allow-remote"):
        EngineEndpoints("tcp://127.0.0.1:0", "tcp://0.0.0.0:7000")
    with pytest.raises(ValueError, match="needs CURVE keys"):
        EngineEndpoints("tcp://0.0.0.0:7001", "tcp://127.0.0.1:0", allow_remote=True)
    with pytest.raises(ValueError, match="both a server secret key and at least one allowed client"):
        EngineEndpoints("tcp://127.0.0.1:0", "tcp://127.0.0.1:0", curve_secret_key="engine.key_secret")
    with pytest.raises(ValueError, match="must start with tcp://, ipc:// or inproc://"):
        EngineEndpoints("udp://127.0.0.1:1", "tcp://127.0.0.1:0")
    remote = EngineEndpoints(
        "tcp://0.0.0.0:7001",
        "tcp://0.0.0.0:7002",
        allow_remote=True,
        curve_secret_key="engine.key_secret",
        curve_allowed_clients=("consoles/",),
    )
    assert remote.allow_remote


def test_ipc_endpoints_bind_as_local_and_carry_status_and_commands(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    endpoints = EngineEndpoints(f"ipc://{folder}/status", f"ipc://{folder}/command")
    sockets = EngineSockets(endpoints).bind()
    ctx: Context = zmq.Context()
    sub = subscriber(ctx, sockets.status_endpoint, None)
    req = requester(ctx, sockets.command_endpoint, None, 5000)
    try:
        assert sockets.status_endpoint == f"ipc://{folder}/status" and sockets.status is not None
        assert sockets.command is not None
        deadline = time.monotonic() + 5
        while not sub.poll(50) and time.monotonic() < deadline:  # a late subscriber misses sends
            sockets.status.send(Status(0.0, "IDLE", False, "", 0, 0, False).encode())
        assert Status.decode(sub.recv()).mode == "IDLE"
        req.send(Command(CommandName.HOLD).encode())
        frames = sockets.command.recv_multipart()
        assert Command.decode(frames[-1]) == Command(CommandName.HOLD)
    finally:
        sub.close(0)
        req.close(0)
        ctx.term()
        sockets.close()


def test_engine_cli_refuses_a_remote_endpoint_in_one_line(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.key_secret")
    (tmp_path / "store").mkdir()  # a store named on the command line must exist
    base = [sys.executable, "-m", "takeover.app.cli", "engine", "--store", str(tmp_path / "store")]
    base += ["--status-endpoint", "tcp://0.0.0.0:0", "--command-endpoint", "tcp://127.0.0.1:0"]
    for extra, reason in [
        ([], "is not on loopback"),
        (["--allow-remote"], "needs CURVE keys"),
        (["--allow-remote", "--curve-secret", missing, "--curve-allow", "x"], f"{missing} does not exist"),
    ]:
        out = subprocess.run([*base, *extra], capture_output=True, text=True, timeout=60)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), out.stderr
        assert reason in lines[0]


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    folder = tmp_path / "keys"
    for name in ("engine", "console", "stranger"):
        curve.generate_keypair(folder, name)
    return folder


def client_keys(folder: Path, name: str) -> curve.ClientKeys:
    return curve.ClientKeys.load(str(folder / f"{name}.key_secret"), str(folder / "engine.key"))


class Peers:
    """A fake robot behind a station server and a constant policy behind a policy server."""

    def __init__(self) -> None:
        self.robot = FakeRobot()
        station = BridgeStation(self.robot, FakeRobotConfig().bridge_config())
        self.station = StationServer(station, StationServerConfig(endpoint="tcp://127.0.0.1:*", poll_ms=20))
        self.policy = PolicyServer(ServerConfig(endpoint="tcp://127.0.0.1:*", poll_ms=20), self)
        self.policy_id = "still-0"
        self.threads = [
            threading.Thread(target=s.serve_forever, daemon=True) for s in (self.station, self.policy)
        ]

    def predict(self, state: np.ndarray) -> np.ndarray:
        return np.zeros((4, 4), np.float32)

    def __enter__(self) -> Peers:
        self.station.bind()
        self.policy.bind()
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for s in (self.station, self.policy):
            s.stop()
        for t in self.threads:
            t.join(timeout=5)
        self.station.close()
        self.policy.close()


@pytest.fixture
def engine(tmp_path: Path, keys: Path) -> Iterator[tuple[str, str]]:
    """A CURVE-secured engine on loopback; yields its (status, command) endpoints."""
    status = command = "tcp://127.0.0.1:0"  # it binds free ports and says which
    with Peers() as peers:
        (tmp_path / "store").mkdir()  # a store named in the configuration must exist
        config = tmp_path / "takeover.toml"
        config.write_text(
            f'[station]\nkind = "remote"\nurl = "{peers.station.endpoint}"\n'
            f'[policy]\nurl = "{peers.policy.endpoint}"\n[store]\npath = "{tmp_path / "store"}"\n'
        )
        command_line = [sys.executable, "-m", "takeover.app.cli", "engine", "--config", str(config)]
        command_line += ["--status-endpoint", status, "--command-endpoint", command]
        command_line += ["--curve-secret", str(keys / "engine.key_secret")]
        command_line += ["--curve-allow", str(keys / "console.key")]
        log = tmp_path / "engine.log"
        with open(log, "w") as stderr:
            proc = subprocess.Popen(
                command_line, stdin=subprocess.DEVNULL, stderr=stderr, env={**os.environ, "MUJOCO_GL": "egl"}
            )
            try:
                yield _bound_endpoints(proc, log)
                assert proc.wait(timeout=30) == 0, log.read_text()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


def _bound_endpoints(proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 60.0) -> tuple[str, str]:
    """The endpoints an engine started on its own prints once it has bound them."""
    pattern = re.compile(r"engine: status on (\S+), commands on (\S+)")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = pattern.search(log.read_text())
        if found:
            return found.group(1), found.group(2)
        assert proc.poll() is None, f"the engine exited early:\n{log.read_text()}"
        time.sleep(0.05)
    raise AssertionError(f"the engine did not say where it listens:\n{log.read_text()}")


def subscriber(ctx: Context, endpoint: str, keys: curve.ClientKeys | None) -> zmq.Socket[bytes]:
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    if keys is not None:
        curve.make_client(sub, keys)
    sub.connect(endpoint)
    return sub


def requester(
    ctx: Context, endpoint: str, keys: curve.ClientKeys | None, timeout_ms: int
) -> zmq.Socket[bytes]:
    req = ctx.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.setsockopt(zmq.RCVTIMEO, timeout_ms)
    if keys is not None:
        curve.make_client(req, keys)
    req.connect(endpoint)
    return req


@pytest.mark.slow
def test_a_console_with_keys_sees_and_commands_the_engine_and_others_get_nothing(
    engine: tuple[str, str], keys: Path
) -> None:
    status_ep, command_ep = engine
    console = client_keys(keys, "console")
    ctx: Context = zmq.Context()
    sockets: list[zmq.Socket[bytes]] = []

    def req(who: curve.ClientKeys | None, ms: int) -> zmq.Socket[bytes]:
        sockets.append(requester(ctx, command_ep, who, ms))
        return sockets[-1]

    try:
        sockets.append(sub := subscriber(ctx, status_ep, console))
        assert sub.poll(30_000), "no status from the engine"
        status = Status.decode(sub.recv())
        deadline = time.monotonic() + 30
        while "ready" not in status.message and time.monotonic() < deadline:
            status = Status.decode(sub.recv())
        assert status.mode == "IDLE" and "ready" in status.message

        for who in (None, client_keys(keys, "stranger")):
            sockets.append(stranger := subscriber(ctx, status_ep, who))
            assert not stranger.poll(1000), "a console without the engine's trust saw its status"
            with pytest.raises(zmq.Again):
                req(who, 1000).send(Command(CommandName.QUIT).encode())
                sockets[-1].recv()

        big = req(console, 5000)
        big.send(b"\x00" * (1024 * 1024))  # over the command socket's size limit: dropped with the peer
        with pytest.raises(zmq.Again):
            big.recv()
        ok = req(console, 5000)
        ok.send(wire.encode({"type": "command", "name": "takeover", "speed": 3}))
        with pytest.raises(RefusedError, match=r"unexpected field\(s\) 'speed'"):
            decode_reply(ok.recv(), CommandReply)
        ok.send(wire.encode({"type": "command", "name": "quit", "outcome": 1}))
        with pytest.raises(RefusedError, match="'outcome' must be one of"):
            decode_reply(ok.recv(), CommandReply)
        ok.send(Command(CommandName.QUIT).encode())
        assert decode_reply(ok.recv(), CommandReply) == CommandReply()
    finally:
        for sock in sockets:
            sock.close(0)
        ctx.term()
