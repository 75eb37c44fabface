"""The real console window driven with pytest-qt against the fake engine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PyQt6.QtCore import QEvent, Qt
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import QApplication

from takeover.app.engine.protocol import Command, CommandName
from takeover.app.gui.console.camera_view import NO_SIGNAL_TEXT
from takeover.app.gui.console.panels import CLICK_GUARD_S
from takeover.app.gui.console.window import MODE_COLORS, NO_ENGINE_COLOR

from .conftest import make_status, sample_frame

pytestmark = pytest.mark.gui

DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "console.png"


def show(qtbot: Any, engine: Any, window: Any, **fields: Any) -> None:
    """Publish a status and wait until the window shows it."""
    engine.status = make_status(**fields)
    expected = engine.status
    qtbot.waitUntil(
        lambda: (
            window.status is not None
            and (window.status.mode, window.status.episode_active, window.status.step)
            == (expected.mode, expected.episode_active, expected.step)
        ),
        timeout=3000,
    )


def settle(qtbot: Any) -> None:
    """Wait out the guard of buttons that just became enabled (a click sooner is ignored)."""
    qtbot.wait(int(CLICK_GUARD_S * 1000) + 50)


def fill_color(label: Any) -> QColor:
    """The colour actually rendered at the left edge of a label (clear of its text)."""
    image = label.grab().toImage()
    return image.pixelColor(10, image.height() // 2)


def visible_windows() -> list[Any]:
    return [w for w in QApplication.topLevelWidgets() if w.isVisible()]


def test_published_frame_appears_scaled_with_aspect(qtbot: Any, engine: Any, console: Any) -> None:
    frame = np.zeros((60, 80, 3), np.uint8)
    frame[:, :, 0] = 255  # pure red
    frame[30:, :, 2] = 255  # bottom half magenta
    show(qtbot, engine, console, image=frame, step=1)
    qtbot.waitUntil(lambda: console.camera.frame_size is not None, timeout=3000)
    pixmap = console.camera.pixmap()
    assert not pixmap.isNull()
    assert (console.camera.frame_size.width(), console.camera.frame_size.height()) == (80, 60)
    label = console.camera.size()
    assert pixmap.width() <= label.width() and pixmap.height() <= label.height()
    assert pixmap.width() == label.width() or pixmap.height() == label.height()
    assert abs(pixmap.width() / pixmap.height() - 80 / 60) < 0.03
    image = pixmap.toImage()
    assert image.pixelColor(2, 2) == QColor(255, 0, 0)
    assert image.pixelColor(2, image.height() - 2) == QColor(255, 0, 255)


@pytest.mark.parametrize("mode", ["AUTONOMOUS", "HUMAN", "HOLD"])
def test_mode_indicator_follows_status(qtbot: Any, engine: Any, console: Any, mode: str) -> None:
    show(qtbot, engine, console, mode=mode, step=2)
    assert console.mode_label.text() == mode
    assert fill_color(console.mode_label) == MODE_COLORS[mode]
    assert console.mode_label.font().pixelSize() >= 48


def test_episode_fields_and_timing(qtbot: Any, engine: Any, console: Any) -> None:
    show(qtbot, engine, console, step=311, episodes_done=9, success=True, timing={"period_ms": 19.96})
    assert console.episode_value.text() == "ep-0007"
    assert console.step_value.text() == "311"
    assert console.done_value.text() == "9"
    assert console.success_value.text() == "YES"
    assert console.timing_value.text() == "period 20.0 ms"
    engine.status = make_status(message="episode ep-0007 saved", step=312)
    qtbot.waitUntil(lambda: console.message_label.text() == "episode ep-0007 saved", timeout=3000)


ENDING = ("success", "near", "failure", "discard", "rerecord")


def test_buttons_follow_state(qtbot: Any, engine: Any, console: Any) -> None:
    def enabled() -> set[str]:
        buttons = {
            "start": console.start_button,
            "stop": console.stop_button,
            "takeover": console.takeover_button,
            "handback": console.handback_button,
            "success": console.success_button,
            "near": console.near_success_button,
            "failure": console.failure_button,
            "discard": console.discard_button,
            "rerecord": console.rerecord_button,
            "hold": console.hold_button,
            "resume": console.resume_button,
            "estop": console.estop_button,
            "reset": console.reset_button,
        }
        return {name for name, button in buttons.items() if button.isEnabled()}

    show(qtbot, engine, console, mode="AUTONOMOUS", episode_active=True, step=10)
    assert enabled() == {"stop", "takeover", *ENDING, "hold", "estop"}
    show(qtbot, engine, console, mode="HUMAN", episode_active=True, step=11)
    assert enabled() == {"stop", "handback", *ENDING, "hold", "estop"}
    show(qtbot, engine, console, mode="RAMP", episode_active=True, step=12)
    assert enabled() == {"stop", "takeover", *ENDING, "hold", "estop"}
    show(qtbot, engine, console, mode="HOLD", episode_active=True, step=13)
    assert enabled() == {"stop", "takeover", *ENDING, "resume", "estop"}
    show(qtbot, engine, console, mode="ESTOP", episode_active=True, step=14)
    assert enabled() == {"stop", *ENDING, "reset"}
    show(qtbot, engine, console, mode="AUTONOMOUS", episode_active=False, step=0)
    assert enabled() == {"start", "estop"}  # a hold between attempts would be refused


def test_clicks_send_commands(qtbot: Any, engine: Any, console: Any) -> None:
    show(qtbot, engine, console, episode_active=False, step=0)
    qtbot.mouseClick(console.start_button, Qt.MouseButton.LeftButton)
    show(qtbot, engine, console, mode="AUTONOMOUS", episode_active=True, step=1)
    qtbot.mouseClick(console.takeover_button, Qt.MouseButton.LeftButton)
    show(qtbot, engine, console, mode="HUMAN", episode_active=True, step=2)
    qtbot.mouseClick(console.handback_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(console.hold_button, Qt.MouseButton.LeftButton)
    settle(qtbot)
    qtbot.mouseClick(console.success_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(console.failure_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(console.stop_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(console.estop_button, Qt.MouseButton.LeftButton)
    show(qtbot, engine, console, mode="ESTOP", episode_active=True, step=3)
    qtbot.mouseClick(console.reset_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(engine.commands) == 9, timeout=3000)  # sent from the link's thread
    assert engine.commands == [
        Command(CommandName.START_EPISODE),
        Command(CommandName.TAKEOVER),
        Command(CommandName.HANDBACK),
        Command(CommandName.HOLD),
        Command(CommandName.STOP_EPISODE, outcome="success"),
        Command(CommandName.STOP_EPISODE, outcome="failure"),
        Command(CommandName.STOP_EPISODE),
        Command(CommandName.ESTOP),
        Command(CommandName.RESET_ESTOP),
    ]


def test_discard_needs_a_second_click(qtbot: Any, engine: Any, console: Any) -> None:
    show(qtbot, engine, console, mode="AUTONOMOUS", episode_active=True, step=5)
    settle(qtbot)
    qtbot.mouseClick(console.discard_button, Qt.MouseButton.LeftButton)
    assert engine.commands == [] and console.discard_button.text() == "Click again to discard"
    assert "again" in console.message_label.text()
    qtbot.mouseClick(console.discard_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: engine.commands == [Command(CommandName.DISCARD_EPISODE)], timeout=3000)
    assert console.discard_button.text() == "Discard"


def test_discard_disarms_by_itself_and_when_the_attempt_ends(qtbot: Any, engine: Any, console: Any) -> None:
    show(qtbot, engine, console, mode="AUTONOMOUS", episode_active=True, step=5)
    console._discard_timer.setInterval(100)
    settle(qtbot)
    qtbot.mouseClick(console.discard_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: console.discard_button.text() == "Discard", timeout=3000)
    qtbot.mouseClick(console.discard_button, Qt.MouseButton.LeftButton)  # arms again, sends nothing
    show(qtbot, engine, console, mode="AUTONOMOUS", episode_active=False, step=0)
    assert console.discard_button.text() == "Discard" and not console.discard_button.isEnabled()
    assert engine.commands == []


def test_disabled_button_sends_nothing(qtbot: Any, engine: Any, console: Any) -> None:
    show(qtbot, engine, console, mode="AUTONOMOUS", episode_active=False, step=0)
    qtbot.mouseClick(console.takeover_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(console.hold_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(console.estop_button, Qt.MouseButton.LeftButton)  # in order, after any other
    qtbot.waitUntil(lambda: bool(engine.commands), timeout=3000)
    qtbot.wait(100)
    assert engine.commands == [Command(CommandName.ESTOP)]


def test_keys_send_held_set_even_over_a_button(qtbot: Any, engine: Any, console: Any) -> None:
    show(qtbot, engine, console, episode_active=True, step=3)  # Stop is enabled: Space must not click it
    settle(qtbot)
    target = console.stop_button
    qtbot.keyPress(target, Qt.Key.Key_W)
    qtbot.keyPress(target, Qt.Key.Key_A)
    qtbot.keyPress(target, Qt.Key.Key_Space)
    qtbot.keyRelease(target, Qt.Key.Key_W)
    qtbot.keyRelease(target, Qt.Key.Key_Space)
    qtbot.keyPress(console.camera, Qt.Key.Key_Escape)
    qtbot.keyRelease(console.camera, Qt.Key.Key_Escape)
    qtbot.keyRelease(target, Qt.Key.Key_A)
    qtbot.waitUntil(lambda: len(engine.commands) == 8, timeout=3000)
    keys = [c.keys for c in engine.commands]
    assert all(c.name == CommandName.KEYS for c in engine.commands)
    assert keys == [
        ("W",),
        ("W", "A"),
        ("W", "A", "Space"),
        ("A", "Space"),
        ("A",),
        ("A", "Escape"),
        ("A",),
        (),
    ]


def test_focus_loss_releases_held_keys(qtbot: Any, engine: Any, console: Any) -> None:
    qtbot.keyPress(console, Qt.Key.Key_R)
    QApplication.sendEvent(console, QEvent(QEvent.Type.WindowDeactivate))
    qtbot.waitUntil(lambda: len(engine.commands) == 2, timeout=3000)
    assert [c.keys for c in engine.commands] == [("R",), ()]


def test_ctrl_shortcut_is_not_teleop(qtbot: Any, engine: Any, console: Any) -> None:
    show(qtbot, engine, console, mode="AUTONOMOUS", episode_active=True, step=5)
    settle(qtbot)
    qtbot.keyClick(console, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: bool(engine.commands), timeout=2000)
    assert engine.commands == [Command(CommandName.STOP_EPISODE, outcome="success")]


def test_engine_silence_shows_lost_connection(qtbot: Any, engine: Any, console: Any) -> None:
    show(qtbot, engine, console, mode="HUMAN", episode_active=True, step=7)
    assert console.connection_label.text() == "engine: connected"
    engine.silent = True
    qtbot.waitUntil(lambda: console.connection_label.text() == "engine: NOT ANSWERING", timeout=3000)
    assert console.camera.stale and console.camera.text() == NO_SIGNAL_TEXT
    assert console.mode_label.text() == "ENGINE NOT ANSWERING"
    assert console.message_label.text().startswith("engine not answering")
    assert fill_color(console.mode_label) == NO_ENGINE_COLOR
    assert not console.takeover_button.isEnabled() and not console.handback_button.isEnabled()
    assert console.hold_button.isEnabled()  # the stop button is never greyed out
    engine.silent = False
    qtbot.waitUntil(lambda: console.connection_label.text() == "engine: connected", timeout=3000)
    qtbot.waitUntil(lambda: not console.camera.stale, timeout=3000)
    assert console.mode_label.text() == "HUMAN"
    assert console.message_label.text() == "engine answering again"


def test_status_without_frames_goes_stale(qtbot: Any, engine: Any, console: Any) -> None:
    show(qtbot, engine, console, image=None, step=8)
    qtbot.waitUntil(lambda: console.camera.stale, timeout=3000)
    assert console.mode_label.text() == "AUTONOMOUS"  # status still flows; only the camera is stale


def test_close_sends_quit_and_leaves_nothing_running(qtbot: Any, engine: Any, console: Any) -> None:
    thread = console.link.status_thread
    console.close()
    assert engine.names()[-1] == CommandName.QUIT
    assert thread is not None and thread.isFinished()
    assert not console.link.running
    assert visible_windows() == []


def test_screenshot(qtbot: Any, engine: Any, console: Any, screenshot: Any, tmp_path: Path) -> None:
    show(
        qtbot,
        engine,
        console,
        mode="HUMAN",
        step=318,
        image=sample_frame(),
        timing={"period_ms": 20.0, "loop_ms": 3.4, "policy_ms": 11.8, "overruns": 2.0},
        episodes_done=6,
        message="operator took over at step 291",
    )
    qtbot.waitUntil(lambda: console.camera.frame_size is not None, timeout=3000)
    qtbot.waitUntil(lambda: console.message_label.text() != "", timeout=3000)
    path = screenshot(console, tmp_path / "console.png")
    assert path.stat().st_size > 10_000
    if os.environ.get("TAKEOVER_WRITE_DOCS_SCREENSHOT") == "1":
        screenshot(console, DOCS_SCREENSHOT)
