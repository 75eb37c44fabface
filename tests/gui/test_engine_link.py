"""EngineLink against the fake engine: status in on its thread, commands out, timeouts."""

from __future__ import annotations

from typing import Any

import pytest

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
    assert not link.running and link.status_thread is None
    errors: list[str] = []
    link.error.connect(errors.append)
    assert link.send(Command(CommandName.HOLD)) is None
    assert errors and "not connected" in errors[0]
    assert engine.commands == []


def test_status_arrives_in_gui_thread(qtbot: Any, engine: Any, link: Any) -> None:
    with qtbot.waitSignal(link.connection_ok, timeout=3000):
        link.start()
    with qtbot.waitSignal(link.status_received, timeout=2000) as blocker:
        pass
    status = blocker.args[0]
    assert isinstance(status, Status)
    assert status.episode_id == engine.status.episode_id
    assert status.image is not None and status.image.shape == engine.status.image.shape
    assert link.connected


def test_send_returns_reply_and_records_command(qtbot: Any, engine: Any, link: Any) -> None:
    link.start()
    reply = link.send(Command(CommandName.STOP_EPISODE, outcome="success"))
    assert reply is not None and reply["ok"] is True
    assert engine.commands == [Command(CommandName.STOP_EPISODE, outcome="success")]


def test_unanswered_command_reports_error_and_recovers(qtbot: Any, engine: Any, link: Any) -> None:
    link.start()
    engine.reply_delay_s = 0.6
    with qtbot.waitSignal(link.error, timeout=2000) as blocker:
        assert link.send(Command(CommandName.TAKEOVER)) is None
    assert "did not answer 'takeover'" in blocker.args[0]
    engine.reply_delay_s = 0.0
    qtbot.wait(700)  # let the busy fake finish its late answer
    reply = link.send(Command(CommandName.HANDBACK))  # a fresh REQ socket: lockstep not stuck
    assert reply is not None and reply["ok"] is True
    assert engine.names()[-1] == CommandName.HANDBACK


def test_silence_reports_lost_then_ok(qtbot: Any, engine: Any, link: Any) -> None:
    with qtbot.waitSignal(link.connection_ok, timeout=3000):
        link.start()
    engine.silent = True
    with qtbot.waitSignal(link.connection_lost, timeout=3000):
        pass
    assert not link.connected
    engine.silent = False
    with qtbot.waitSignal(link.connection_ok, timeout=3000):
        pass
    assert link.connected


def test_stop_finishes_thread_promptly(qtbot: Any, engine: Any, link: Any) -> None:
    link.start()
    qtbot.waitUntil(lambda: link.connected, timeout=3000)
    thread = link.status_thread
    link.stop(timeout_ms=1000)
    assert thread is not None and thread.isFinished()
    assert not link.running
    link.stop()  # twice is harmless
