"""The console's EngineLink reaches a CURVE-secured engine with its keys, and nothing without them.

The engine side is the engine's own socket binding (EngineSockets) and request loop, publishing a
status and answering commands; only the control loop behind it is left out.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from takeover.app.engine.protocol import Command, CommandName, CommandReply, Status
from takeover.app.engine.sockets import EngineEndpoints, EngineSockets
from takeover.app.gui.console.engine_link import EngineLink
from takeover.app.net import curve
from takeover.app.net.rpc import serve_requests

pytestmark = pytest.mark.gui

STATUS = Status(0.0, "IDLE", False, "", 0, 0, False, message="ready")


class SecuredEngine:
    def __init__(self, keys: Path) -> None:
        endpoints = EngineEndpoints(
            "tcp://127.0.0.1:0",
            "tcp://127.0.0.1:0",
            curve_secret_key=str(keys / "engine.key_secret"),
            curve_allowed_clients=(str(keys / "console.key"),),
        )
        self.sockets = EngineSockets(endpoints).bind()
        self.stop = threading.Event()
        self.commands: list[Command] = []
        self.threads = [threading.Thread(target=self._publish), threading.Thread(target=self._serve)]

    def _publish(self) -> None:
        assert self.sockets.status is not None
        while not self.stop.wait(0.05):
            self.sockets.status.send(STATUS.encode())

    def _serve(self) -> None:
        assert self.sockets.command is not None

        def answer(frames: list[bytes]) -> bytes:
            self.commands.append(Command.decode(frames[0]))
            return CommandReply().encode()

        serve_requests(self.sockets.command, answer, self.stop, 20)

    def __enter__(self) -> SecuredEngine:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=5)
        self.sockets.close()


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    for name in ("engine", "console", "stranger"):
        curve.generate_keypair(tmp_path, name)
    return tmp_path


@pytest.fixture
def engine(keys: Path) -> Iterator[SecuredEngine]:
    with SecuredEngine(keys) as peer:
        yield peer


def _keys(folder: Path, name: str) -> curve.ClientKeys:
    return curve.ClientKeys.load(str(folder / f"{name}.key_secret"), str(folder / "engine.key"))


def test_a_console_with_keys_gets_status_and_sends_commands(
    qtbot: Any, engine: SecuredEngine, keys: Path
) -> None:
    link = EngineLink(
        engine.sockets.status_endpoint, engine.sockets.command_endpoint, keys=_keys(keys, "console")
    )
    try:
        with qtbot.waitSignal(link.status_received, timeout=5000) as blocker:
            link.start()
        assert blocker.args[0].message == "ready"
        with qtbot.waitSignal(link.replied, timeout=5000) as answered:
            link.send(Command(CommandName.HOLD), timeout_ms=3000)
        command, reply = answered.args
        assert command == Command(CommandName.HOLD) and reply["ok"] is True
        assert engine.commands == [Command(CommandName.HOLD)]
    finally:
        link.stop()


@pytest.mark.parametrize("who", ["no keys", "stranger"])
def test_a_console_without_the_engines_trust_gets_nothing(
    qtbot: Any, engine: SecuredEngine, keys: Path, who: str
) -> None:
    link = EngineLink(
        engine.sockets.status_endpoint,
        engine.sockets.command_endpoint,
        stale_after_s=0.5,
        keys=None if who == "no keys" else _keys(keys, "stranger"),
    )
    received: list[Status] = []
    link.status_received.connect(received.append)
    try:
        with qtbot.waitSignal(link.connection_lost, timeout=3000):
            link.start()
        with qtbot.waitSignal(link.error, timeout=3000) as refused:
            link.send(Command(CommandName.ESTOP), timeout_ms=500)
        assert "not answering" in refused.args[0].lower()
        assert received == [] and engine.commands == []
    finally:
        link.stop()
