"""A console attaches to an engine running on its own, detaches without stopping its loop, and
attaches again to find the same attempt; a second console is refused, or watches read-only.

Everything is real: `takeover engine` as its own process (no parent: it owns itself) driving a
fake robot served over the station protocol, a policy server on loopback, the console's window
(offscreen) with its link and session, and `takeover console --attach` for the refusal.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before anything imports a Qt GUI class

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtWidgets import QApplication, QMessageBox

from takeover.app.engine.attach import request_attach
from takeover.app.engine.protocol import Command, CommandName, CommandReply, Status
from takeover.app.gui.console.engine_link import EngineLink
from takeover.app.gui.console.panels import CLICK_GUARD_S
from takeover.app.gui.console.session import ConsoleOptions, ConsoleSession
from takeover.app.gui.console.window import MainWindow
from takeover.app.net.messages import RefusedError, decode_reply
from takeover.app.runtime.config import parse_config
from takeover.storage.store import Store

from .test_engine_endpoints import Peers, _bound_endpoints

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def engine_config(peers: Peers, folder: Path) -> tuple[Path, Path]:
    """A configuration for an engine on the fake robot and policy of ``peers``, with a new store
    in ``folder``: (the file, the store)."""
    store = folder / "store"
    Store.create(store).close()
    config = folder / "engine.toml"
    config.write_text(
        f'[station]\nkind = "remote"\nurl = "{peers.station.endpoint}"\n'
        f'[policy]\nurl = "{peers.policy.endpoint}"\n[store]\npath = "{store}"\n'
    )
    return config, store


@pytest.fixture
def engine_alone(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """`takeover engine` started by hand (no --parent-fd); yields its command endpoint."""
    with Peers() as peers:
        config, store = engine_config(peers, tmp_path)
        command_line = [sys.executable, "-m", "takeover.app.cli", "engine", "--config", str(config)]
        command_line += ["--status-endpoint", "tcp://127.0.0.1:0", "--command-endpoint", "tcp://127.0.0.1:0"]
        command_line += ["--max-steps", "100000"]
        log = tmp_path / "engine.log"
        with open(log, "w") as stderr:
            proc = subprocess.Popen(command_line, stdin=subprocess.DEVNULL, stderr=stderr)
            try:
                _, command = _bound_endpoints(proc, log)
                assert f"takeover console --attach {command}" in log.read_text()
                yield command, proc, store
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()


OPEN: list[MainWindow] = []
"""Consoles a failed test leaves open: closed without the question (nobody would answer it)."""


@pytest.fixture(autouse=True)
def _close_without_asking() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close_choice = lambda: "detach"


class Console:
    """A console as `takeover console --attach` composes it (app.run_gui, without app.exec)."""

    def __init__(self, qtbot: Any, command: str, viewer: str) -> None:
        reply = request_attach(command, viewer)
        self.granted, self.holder = reply.granted, reply.holder
        self.link = EngineLink(reply.status, command, command_timeout_ms=2000, viewer=viewer)
        self.window = MainWindow(self.link)
        qtbot.addWidget(self.window)
        OPEN.append(self.window)
        options = ConsoleOptions(owns_engine=False, attach_url=command)
        self.session = ConsoleSession(self.window, self.link, options, "Takeover")
        self.link.start()
        self.window.show()
        self.qtbot = qtbot

    def shown(self, pred: Any, timeout: int = 20000) -> Status:
        window = self.window
        self.qtbot.waitUntil(lambda: window.status is not None and pred(window.status), timeout=timeout)
        assert self.window.status is not None
        return self.window.status

    def close_answering(self, answer: str) -> None:
        """Close the window; answer the question it asks with the button labelled ``answer``."""
        asked: list[str] = []

        def click() -> None:
            box = QApplication.activeModalWidget()
            if not isinstance(box, QMessageBox):
                QTimer.singleShot(50, click)
                return
            asked.append(box.text())
            default = box.defaultButton()
            asked.append(default.text() if default is not None else "")
            buttons = [b for b in box.buttons() if b.text().replace("&", "") == answer]
            (buttons or box.buttons())[0].click()  # never leave the question open

        QTimer.singleShot(50, click)
        self.window.close()
        assert asked == ["This console did not start the engine. Leave it running?", "Detach"]
        assert self.link.status_thread is None or self.link.status_thread.isFinished()


def watch(command_ep: str, status_ep: str, seconds: float) -> list[Status]:
    """Statuses the engine publishes for ``seconds``, seen by a bare subscriber (no console)."""
    ctx: zmq.Context[Any] = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(status_ep)
    seen: list[Status] = []
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if sub.poll(100):
                seen.append(Status.decode(sub.recv()))
    finally:
        sub.close(0)
        ctx.term()
    return seen


def command_as(command_ep: str, cmd: Command) -> str:
    """Send one command as a bare client; '' if taken, else the engine's reason."""
    ctx: zmq.Context[Any] = zmq.Context()
    req = ctx.socket(zmq.REQ)
    req.setsockopt(zmq.RCVTIMEO, 5000)
    req.connect(command_ep)
    try:
        req.send(cmd.encode())
        try:
            decode_reply(req.recv(), CommandReply)
        except RefusedError as exc:
            return str(exc)
        return ""
    finally:
        req.close(0)
        ctx.term()


def test_detach_leaves_the_loop_running_and_the_console_attaches_again(
    qtbot: Any, engine_alone: tuple[str, subprocess.Popen[bytes], Path]
) -> None:
    command, proc, store = engine_alone
    first = Console(qtbot, command, "ana@ws pid 1")
    assert first.granted and first.holder == "ana@ws pid 1"
    first.shown(lambda s: s.readiness == "ready")  # Start is offered once the engine is up
    qtbot.mouseClick(first.window.start_button, Qt.MouseButton.LeftButton)
    running = first.shown(lambda s: s.episode_active and s.step > 5)
    episode = running.episode_id
    assert running.viewer == "ana@ws pid 1"
    assert parse_config(first.session.engine_config, "engine").station.kind == "remote"

    # A second console is refused: on the command line, one line and exit 2 ...
    done = subprocess.run(
        [sys.executable, "-m", "takeover.app.cli", "console", "--attach", command],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: another console is attached to the engine at {command}: ana@ws pid")
    assert "--read-only" in lines[0]
    # ... and one that watches anyway (--read-only) may hold and e-stop but not drive.
    watcher = Console(qtbot, command, "bo@lab pid 2")
    assert not watcher.granted and watcher.holder == "ana@ws pid 1"
    qtbot.waitUntil(lambda: watcher.session.read_only and "(read-only)" in watcher.window.windowTitle())
    assert watcher.session.identity.text().startswith("READ-ONLY (ana@ws pid 1 drives)")
    assert command_as(command, Command(CommandName.STOP_EPISODE, viewer="bo@lab pid 2")).startswith(
        "another console is attached (ana@ws pid 1)"
    )
    watcher.window.close()  # a watcher holds nothing: it leaves without asking
    assert first.window.status is not None and first.window.status.episode_active

    first.close_answering("Detach")
    left = watch(command, first.link.status_endpoint, 1.5)
    assert left and all(s.episode_active and s.episode_id == episode for s in left)
    assert left[-1].step > left[0].step + 10, "the loop stopped when its console went"
    assert left[-1].viewer == "" and proc.poll() is None

    again = Console(qtbot, command, "ana@ws pid 3")
    assert again.granted
    same = again.shown(lambda s: s.episode_active and s.viewer == "ana@ws pid 3")
    assert same.episode_id == episode and same.step > left[-1].step
    qtbot.wait(int(CLICK_GUARD_S * 1000) + 50)  # Stop ignores clicks as it becomes enabled
    qtbot.mouseClick(again.window.stop_button, Qt.MouseButton.LeftButton)
    again.shown(lambda s: not s.episode_active and "saved" in s.message)
    again.close_answering("Stop the engine")
    assert proc.wait(timeout=30) == 0
    with Store.open(store) as s:
        assert [e.episode_id for e in s.list_episodes()] == [episode]
