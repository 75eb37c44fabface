"""EngineLink against the fake engine: status in on its thread, commands out on another, timeouts."""

from __future__ import annotations

import time
from typing import Any

import pytest
from PyQt6.QtCore import QThread

from takeover.app.engine.protocol import Command, CommandName, Status
from takeover.app.gui.console.engine_link import EngineLink

pytestmark = pytest.mark.gui


@pytest.fixture
def link(qtbot: Any, engine: Any) -> Any:
    link = EngineLink(engine.status_endpoint, engine.command_endpoint, command_timeout_ms=300)
    yield link
    link.stop()


def test_no_network_before_start(engine: Any) -> None:
    link = EngineLink(engine.status_endpoint, engine.command_endpoint)
    assert not link.running and link.status_thread is None and link.command_thread is None
    errors: list[str] = []
    link.error.connect(errors.append)
    link.send(Command(CommandName.HOLD))
    assert errors and "not connected" in errors[0]
    assert engine.commands == []


def test_status_arrives_in_gui_thread(qtbot: Any, engine: Any, link: Any) -> None:
    with qtbot.waitSignal(link.connection_ok, timeout=3000):
        link.start()
    threads: list[QThread | None] = []
    link.status_received.connect(lambda _status: threads.append(QThread.currentThread()))
    with qtbot.waitSignal(link.status_received, timeout=2000) as blocker:
        pass
    status = blocker.args[0]
    assert isinstance(status, Status)
    assert status.episode_id == engine.status.episode_id
    assert status.image is not None and status.image.shape == engine.status.image.shape
    assert link.connected
    assert threads and threads[0] is QThread.currentThread()  # the test runs in the GUI thread


def test_send_returns_at_once_and_the_reply_arrives_in_gui_thread(qtbot: Any, engine: Any, link: Any) -> None:
    link.start()
    engine.reply_delay_s = 0.2  # a busy engine: the GUI thread must not wait for it
    where: list[Any] = []
    link.replied.connect(lambda command, reply: where.append((QThread.currentThread(), command, reply)))
    began = time.monotonic()
    link.send(Command(CommandName.STOP_EPISODE, outcome="success"))
    assert time.monotonic() - began < 0.05
    qtbot.waitUntil(lambda: bool(where), timeout=2000)
    thread, command, reply = where[0]
    assert thread is QThread.currentThread() and thread is not link.command_thread
    assert command == Command(CommandName.STOP_EPISODE, outcome="success") and reply["ok"] is True
    assert engine.commands == [Command(CommandName.STOP_EPISODE, outcome="success")]


def test_commands_go_out_in_order(qtbot: Any, engine: Any, link: Any) -> None:
    link.start()
    sent = [Command(CommandName.KEYS, keys=k) for k in (("W",), ("W", "A"), ("A",), ())]
    for command in sent:
        link.send(command)
    qtbot.waitUntil(lambda: len(engine.commands) == len(sent), timeout=3000)
    assert engine.commands == sent


def test_unanswered_command_reports_error_and_recovers(qtbot: Any, engine: Any, link: Any) -> None:
    link.start()
    engine.reply_delay_s = 0.6
    with qtbot.waitSignal(link.error, timeout=2000) as blocker:
        link.send(Command(CommandName.TAKEOVER))
    assert blocker.args[0].startswith("engine not answering: no reply to 'takeover' within 300 ms")
    engine.reply_delay_s = 0.0
    qtbot.wait(700)  # let the busy fake finish its late answer
    with qtbot.waitSignal(link.replied, timeout=2000) as blocker:
        link.send(Command(CommandName.HANDBACK))  # a fresh REQ socket: lockstep not stuck
    assert blocker.args[0] == Command(CommandName.HANDBACK) and blocker.args[1]["ok"] is True
    assert engine.names()[-1] == CommandName.HANDBACK


def test_commands_queued_behind_an_unanswered_one_expire_unsent(qtbot: Any, engine: Any, link: Any) -> None:
    link.start()
    engine.reply_delay_s = 0.8
    errors: list[str] = []
    link.error.connect(errors.append)
    link.send(Command(CommandName.TAKEOVER))
    link.send(Command(CommandName.HANDBACK))  # waits behind takeover longer than its 300 ms
    qtbot.waitUntil(lambda: len(errors) == 2, timeout=3000)
    assert errors[1] == "engine not answering: 'handback' was not sent"
    qtbot.wait(900)
    assert engine.names() == [CommandName.TAKEOVER]  # the stale click never reached the engine


def test_refusal_is_reported(qtbot: Any, engine: Any, link: Any) -> None:
    link.start()
    engine.refuse = "an episode is already running"
    with qtbot.waitSignal(link.error, timeout=2000) as blocker:
        link.send(Command(CommandName.START_EPISODE))
    assert blocker.args[0] == "engine refused 'start_episode': an episode is already running"


def test_silence_reports_lost_then_ok(qtbot: Any, engine: Any, link: Any) -> None:
    with qtbot.waitSignal(link.connection_ok, timeout=3000):
        link.start()
    engine.silent = True
    began = time.monotonic()
    with qtbot.waitSignal(link.connection_lost, timeout=3000):
        pass
    assert time.monotonic() - began < 1.0  # "not answering" within a second
    assert not link.connected
    engine.silent = False
    with qtbot.waitSignal(link.connection_ok, timeout=3000):
        pass
    assert link.connected


def test_stop_sends_what_is_queued_and_finishes_both_threads(qtbot: Any, engine: Any, link: Any) -> None:
    link.start()
    qtbot.waitUntil(lambda: link.connected, timeout=3000)
    threads = (link.status_thread, link.command_thread)
    link.send(Command(CommandName.QUIT))
    link.stop(timeout_ms=1000)
    assert engine.names() == [CommandName.QUIT]
    assert all(t is not None and t.isFinished() for t in threads)
    assert not link.running
    link.stop()  # twice is harmless
