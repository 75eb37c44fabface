"""The console for a shift, driven with pytest-qt against the fake engine: the accidents that must
not spoil data (a double-click on Start, a key between attempts, closing mid-attempt, a failed
start) and what a shift needs on screen (clock, cameras, plot, health, session, keys, help, fit)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from PyQt6.QtCore import QPoint, Qt, QTimer
from PyQt6.QtGui import QColor
from PyQt6.QtTest import QTest
from PyQt6.QtWidgets import QApplication, QLabel, QMessageBox, QPushButton, QWidget

from takeover.app.engine.protocol import (
    AttemptClock,
    Command,
    CommandName,
    HealthItem,
    SessionFigures,
    StartProblem,
)
from takeover.app.gui.console.camera_view import NO_SIGNAL_TEXT
from takeover.app.gui.console.panels import CLICK_GUARD_S, LEVEL_COLORS
from takeover.app.gui.console.shortcuts import ESTOP_KEY, SHORTCUTS, TELEOP_KEYS
from takeover.app.gui.console.window import MODE_COLORS, START_FAILED_TEXT

from .conftest import make_status, sample_frame

pytestmark = pytest.mark.gui

SCREEN = (1366, 768)
TITLE_BAR = 40
"""Room a window manager's title bar takes from the screen's height."""


def show(qtbot: Any, engine: Any, window: Any, **fields: Any) -> None:
    """Publish a status and wait until the window shows it."""
    engine.status = make_status(**fields)
    expected = engine.status
    qtbot.waitUntil(lambda: window.status is not None and window.status.step == expected.step, timeout=3000)
    qtbot.waitUntil(
        lambda: (
            (window.status.mode, window.status.episode_active, window.status.readiness)
            == (expected.mode, expected.episode_active, expected.readiness)
        ),
        timeout=3000,
    )


def settle(qtbot: Any) -> None:
    qtbot.wait(int(CLICK_GUARD_S * 1000) + 50)


def labelled(engine: Any) -> list[Command]:
    """Commands that ended an attempt with the operator's verdict."""
    return [c for c in engine.commands if c.name is CommandName.STOP_EPISODE and c.outcome]


def place(window: Any, widget: QWidget) -> tuple[int, int, int, int]:
    corner = widget.mapTo(window, QPoint(0, 0))
    return corner.x(), corner.y(), widget.width(), widget.height()


def buttons(window: Any) -> dict[str, QPushButton]:
    return {b.text(): b for b in window.findChildren(QPushButton) if b.isVisible()}


# -- 1: the layout never moves under the pointer ------------------------------------------------
def test_double_click_on_start_never_labels(qtbot: Any, engine: Any, console: Any) -> None:
    show(qtbot, engine, console, mode="IDLE", episode_active=False, step=0, clock=None)
    layout_idle = {name: place(console, b) for name, b in buttons(console).items()}
    panels_idle = {box.title(): box.size() for box in console.readouts}
    start_at = console.start_button.rect().center()
    # A double-click as the system delivers it: press, release, then a double-click press, release.
    qtbot.mouseClick(console.start_button, Qt.MouseButton.LeftButton, pos=start_at)
    qtbot.mouseDClick(console.start_button, Qt.MouseButton.LeftButton, pos=start_at)
    qtbot.waitUntil(lambda: CommandName.START_EPISODE in engine.names(), timeout=3000)
    # The attempt starts; the second and third clicks land where Start was a moment ago.
    show(
        qtbot, engine, console, mode="AUTONOMOUS", episode_active=True, step=3, clock=AttemptClock(0.15, 25.0)
    )
    target = console.start_button.mapTo(console, start_at)
    for _ in range(2):
        QTest.mouseClick(console.childAt(target) or console, Qt.MouseButton.LeftButton)
    qtbot.wait(200)
    assert labelled(engine) == []
    assert CommandName.STOP_EPISODE not in engine.names()
    # Nothing moved, no panel shrank.
    assert {name: place(console, b) for name, b in buttons(console).items()} == layout_idle
    assert {box.title(): box.size() for box in console.readouts} == panels_idle
    label_places = [place(console, b) for b in console.label_buttons]
    assert place(console, console.start_button) not in label_places


def test_label_button_ignores_a_click_as_it_becomes_enabled(qtbot: Any, engine: Any, console: Any) -> None:
    show(qtbot, engine, console, mode="IDLE", episode_active=False, step=0)
    show(qtbot, engine, console, mode="AUTONOMOUS", episode_active=True, step=1)
    qtbot.mouseClick(console.success_button, Qt.MouseButton.LeftButton)  # at once: ignored
    qtbot.keyClick(console, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)  # its shortcut too
    qtbot.wait(150)
    assert labelled(engine) == []
    assert "ignored" in console.message_label.text()
    settle(qtbot)
    qtbot.mouseClick(console.success_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: labelled(engine) == [Command(CommandName.STOP_EPISODE, outcome="success")], timeout=3000
    )


# -- 2: requests between attempts are refused, visibly -----------------------------------------
def test_key_while_idle_is_refused_and_not_sent(qtbot: Any, engine: Any, console: Any) -> None:
    show(qtbot, engine, console, mode="IDLE", episode_active=False, step=0)
    qtbot.keyPress(console, Qt.Key.Key_T)
    qtbot.keyRelease(console, Qt.Key.Key_T)
    qtbot.waitUntil(lambda: console.refusal_label.text() != "", timeout=2000)
    assert console.refusal_label.text() == "refused: no attempt is running: key T not sent"
    qtbot.wait(150)
    assert engine.commands == []  # neither the press nor its release
    assert console.key_filter.held == ()
    # The next attempt starts in the policy's hands: nothing was kept for it.
    qtbot.mouseClick(console.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: engine.names()[-1:] == [CommandName.START_EPISODE], timeout=3000)
    assert all(not c.keys for c in engine.commands)


def test_a_key_held_as_the_attempt_ends_is_still_released(qtbot: Any, engine: Any, console: Any) -> None:
    show(qtbot, engine, console, mode="HUMAN", episode_active=True, step=20)
    qtbot.keyPress(console, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: engine.commands == [Command(CommandName.KEYS, keys=("R",))], timeout=2000)
    show(qtbot, engine, console, mode="IDLE", episode_active=False, step=0)
    qtbot.keyRelease(console, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: len(engine.commands) == 2, timeout=2000)
    assert engine.commands[-1] == Command(CommandName.KEYS, keys=())
    assert console.refusal_label.text() == ""


def test_engine_refusal_is_shown_under_the_banner(qtbot: Any, engine: Any, console: Any) -> None:
    show(qtbot, engine, console, mode="IDLE", episode_active=False, step=0)
    assert not console.hold_button.isEnabled() and not console.resume_button.isEnabled()  # refused now
    assert console.estop_button.isEnabled()  # an e-stop latches, attempt or not
    engine.refuse = "the disk cannot hold another attempt"
    qtbot.mouseClick(console.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: console.refusal_label.text() != "", timeout=3000)
    assert console.refusal_label.text() == "refused: the disk cannot hold another attempt (start)"
    assert console.refusal_label.palette().color(console.refusal_label.foregroundRole()) == QColor("#c62828")
    console._refusal_timer.setInterval(50)
    console._refusal_timer.start()
    qtbot.waitUntil(lambda: console.refusal_label.text() == "", timeout=2000)


# -- 3: the attempt's clock ---------------------------------------------------------------------
def test_clock_limit_time_left_and_held(qtbot: Any, engine: Any, console: Any) -> None:
    show(
        qtbot,
        engine,
        console,
        mode="HOLD",
        step=40,
        clock=AttemptClock(elapsed_s=12.25, limit_s=30.0, held_s=7.5),
    )
    assert console.time_value.text() == "12.2 s of 30 s"
    assert console.left_value.text() == "17.8 s left"
    assert console.held_value.text() == "7.5 s"
    show(qtbot, engine, console, mode="IDLE", episode_active=False, step=0, clock=None)
    assert (console.time_value.text(), console.left_value.text(), console.held_value.text()) == ("—",) * 3


# -- 4: closing mid-attempt asks what becomes of it ---------------------------------------------
def answer_close_question(qtbot: Any, text: str | None) -> list[str]:
    """Click the close question's button ``text`` as soon as it shows (None: leave it unanswered)."""
    seen: list[str] = []

    def click() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, click)
            return
        seen.append(box.text())
        if text is not None:
            [button] = [b for b in box.buttons() if b.text() == text]
            button.click()

    QTimer.singleShot(20, click)
    return seen


@pytest.mark.parametrize(
    ("answer", "sent"),
    [
        ("End as failure", [Command(CommandName.STOP_EPISODE, outcome="failure"), Command(CommandName.QUIT)]),
        ("Discard it", [Command(CommandName.DISCARD_EPISODE), Command(CommandName.QUIT)]),
    ],
)
def test_close_mid_attempt_sends_the_choice(
    qtbot: Any, engine: Any, console: Any, answer: str, sent: list[Command]
) -> None:
    show(qtbot, engine, console, mode="AUTONOMOUS", episode_active=True, step=9)
    console.close_answer_timeout_s = 30.0
    seen = answer_close_question(qtbot, answer)
    console.close()
    assert seen == ["An attempt is running. What should become of it?"]
    qtbot.waitUntil(lambda: len(engine.commands) >= 2, timeout=3000)
    assert [c for c in engine.commands if c.name is not CommandName.ATTACH] == sent
    assert not console.isVisible()


def test_close_question_unanswered_keeps_the_attempt_as_interrupted(
    qtbot: Any, engine: Any, console: Any
) -> None:
    show(qtbot, engine, console, mode="HUMAN", episode_active=True, step=9)
    console.close_answer_timeout_s = 0.3
    seen = answer_close_question(qtbot, None)
    console.close()
    assert len(seen) == 1 and not console.isVisible()
    qtbot.waitUntil(lambda: engine.commands[-1:] == [Command(CommandName.QUIT)], timeout=3000)
    assert engine.commands == [Command(CommandName.INTERRUPT), Command(CommandName.QUIT)]


def test_ctrl_c_in_the_terminal_keeps_the_attempt_as_interrupted_unasked(
    qtbot: Any, engine: Any, console: Any
) -> None:
    show(qtbot, engine, console, mode="AUTONOMOUS", episode_active=True, step=9)
    console.close_answer_timeout_s = 30.0  # a question would block here for 30 s
    console.close_unattended()  # what app.py does on SIGINT
    assert not console.isVisible()
    qtbot.waitUntil(lambda: engine.commands[-1:] == [Command(CommandName.QUIT)], timeout=3000)
    assert engine.commands == [Command(CommandName.INTERRUPT), Command(CommandName.QUIT)]


def test_close_question_goes_away_when_the_attempt_ends_by_itself(
    qtbot: Any, engine: Any, console: Any
) -> None:
    show(qtbot, engine, console, mode="AUTONOMOUS", episode_active=True, step=9)
    console.close_answer_timeout_s = 30.0  # the question would stay open for 30 s
    seen = answer_close_question(qtbot, None)
    QTimer.singleShot(300, lambda: setattr(engine, "status", make_status(mode="IDLE", episode_active=False)))
    started = time.monotonic()
    console.close()  # the attempt reaches its limit while the question is open
    assert len(seen) == 1 and not console.isVisible() and time.monotonic() - started < 5
    qtbot.waitUntil(lambda: engine.commands[-1:] == [Command(CommandName.QUIT)], timeout=3000)
    assert engine.commands == [Command(CommandName.QUIT)]  # no verdict for an attempt already over


def test_close_question_cancel_keeps_the_window(qtbot: Any, engine: Any, console: Any) -> None:
    show(qtbot, engine, console, mode="AUTONOMOUS", episode_active=True, step=9)
    console.close_answer_timeout_s = 30.0
    answer_close_question(qtbot, "Cancel")
    console.close()
    assert console.isVisible() and console.link.running
    qtbot.wait(100)
    assert engine.commands == []
    console.close_answer_timeout_s = 0.05


def test_close_between_attempts_asks_nothing(qtbot: Any, engine: Any, console: Any) -> None:
    show(qtbot, engine, console, mode="IDLE", episode_active=False, step=0)
    console.close_answer_timeout_s = 30.0
    console.close()  # a question would block here for 30 s
    assert engine.names() == [CommandName.QUIT]


# -- 5: a failed start shows its cause and the ways out -----------------------------------------
def test_failed_start_shows_cause_and_remedies(qtbot: Any, engine: Any, console: Any) -> None:
    cause = "The policy server at tcp://127.0.0.1:5555 did not answer within 10 s."
    show(
        qtbot,
        engine,
        console,
        mode="IDLE",
        episode_active=False,
        step=0,
        readiness="failed",
        problem=StartProblem(cause, ("retry", "keyboard", "settings")),
    )
    assert console.mode_label.text() == START_FAILED_TEXT
    assert console.problem_panel.isVisible() and console.problem_panel.cause.text() == cause
    assert not console.camera.isVisible()
    assert not console.start_button.isEnabled()
    assert console.connection_label.text() != "engine: connected"
    assert "NOT started" in console.connection_label.text()
    for button in (console.problem_panel.retry_button, console.problem_panel.keyboard_button):
        assert button.isVisible()
    with qtbot.waitSignal(console.settings_requested, timeout=1000):
        qtbot.mouseClick(console.problem_panel.settings_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(console.problem_panel.retry_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(console.problem_panel.keyboard_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: engine.names() == [CommandName.RETRY, CommandName.USE_KEYBOARD], timeout=3000)
    # Only the remedies the engine offers are shown.
    show(
        qtbot,
        engine,
        console,
        mode="IDLE",
        episode_active=False,
        step=1,
        readiness="failed",
        problem=StartProblem("x", ("settings",)),
    )
    assert (
        not console.problem_panel.retry_button.isVisible()
        and not console.problem_panel.keyboard_button.isVisible()
    )
    show(qtbot, engine, console, mode="IDLE", episode_active=False, step=2, readiness="ready")
    assert not console.problem_panel.isVisible() and console.camera.isVisible()
    assert console.start_button.isEnabled() and console.connection_label.text() == "engine: connected"


# -- 6: the live view ------------------------------------------------------------------------
def test_every_camera_at_once_and_no_signal_when_not_live(qtbot: Any, engine: Any, console: Any) -> None:
    wrist = np.full((120, 160, 3), 90, np.uint8)
    show(qtbot, engine, console, step=5, image=sample_frame(), previews={"wrist": wrist, "top": wrist})
    qtbot.waitUntil(lambda: set(console.previews) == {"wrist", "top"}, timeout=3000)
    qtbot.waitUntil(lambda: not any(v.stale for v in console.previews.values()), timeout=3000)
    views = [console.camera, *console.previews.values()]
    assert all(v.isVisible() and v.width() >= 200 and v.height() >= 150 for v in views)
    rects = [v.geometry().translated(v.parentWidget().pos()) for v in views]
    assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1 :])
    # Between attempts the engine sends no frames: every view says NO SIGNAL, none keeps a picture.
    show(qtbot, engine, console, mode="IDLE", episode_active=False, step=6, image=None, previews={})
    qtbot.waitUntil(lambda: all(v.stale for v in views), timeout=3000)
    assert all(v.text() == NO_SIGNAL_TEXT and v.pixmap().isNull() for v in views)


def test_five_cameras_all_in_view_at_1366_by_768(qtbot: Any, engine: Any, console: Any) -> None:
    frame = np.full((120, 160, 3), 90, np.uint8)
    names = {"wrist", "top", "left", "right"}
    show(qtbot, engine, console, step=5, image=sample_frame(), previews=dict.fromkeys(names, frame))
    qtbot.waitUntil(lambda: set(console.previews) == names, timeout=3000)
    console.resize(SCREEN[0], SCREEN[1] - TITLE_BAR)
    qtbot.wait(100)
    assert console.minimumSizeHint().height() <= SCREEN[1] - TITLE_BAR
    views = [console.camera, *console.previews.values()]
    assert all(v.isVisible() and v.height() >= 100 for v in views)
    bottom = console.centralWidget().height()
    assert all(v.mapTo(console.centralWidget(), v.rect().bottomRight()).y() <= bottom for v in views)


def test_hold_and_estop_banners_differ(qtbot: Any, engine: Any, console: Any) -> None:
    hold, estop = MODE_COLORS["HOLD"], MODE_COLORS["ESTOP"]
    assert abs(hold.hue() - estop.hue()) >= 30  # amber and red, not two reds
    show(qtbot, engine, console, mode="HOLD", step=2)
    held = console.mode_label.grab().toImage().pixelColor(10, 30)
    show(qtbot, engine, console, mode="ESTOP", step=3)
    stopped = console.mode_label.grab().toImage().pixelColor(10, 30)
    assert (held, stopped) == (hold, estop)


def test_plot_gripper_and_instruction(qtbot: Any, engine: Any, console: Any) -> None:
    show(
        qtbot,
        engine,
        console,
        step=7,
        ee=np.array([0.1, 0.6, 0.2], np.float32),
        gripper_closed=True,
        instruction="Put the cube on the plate.",
    )
    qtbot.waitUntil(lambda: len(console.state_plot.samples) >= 3, timeout=3000)
    x, y = console.state_plot.curves[2].getData()
    assert np.allclose(y, 0.2) and x.max() <= 0.0 and x.min() >= -10.0
    assert console.gripper_value.text() == "CLOSED"
    assert console.instruction_label.text() == "Task: Put the cube on the plate."
    show(qtbot, engine, console, step=8, gripper_closed=False, ee=None)
    assert console.gripper_value.text() == "open"


# -- 8: actions ------------------------------------------------------------------------------
def test_estop_by_key_and_by_button_also_between_attempts(qtbot: Any, engine: Any, console: Any) -> None:
    show(qtbot, engine, console, mode="IDLE", episode_active=False, step=0)
    assert ESTOP_KEY == "F12"
    qtbot.keyClick(console, Qt.Key.Key_F12)
    qtbot.waitUntil(lambda: engine.names() == [CommandName.ESTOP], timeout=2000)
    show(qtbot, engine, console, mode="AUTONOMOUS", episode_active=True, step=3)
    qtbot.keyClick(console.camera, Qt.Key.Key_F12)
    qtbot.mouseClick(console.estop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: engine.names() == [CommandName.ESTOP] * 3, timeout=2000)


def test_near_success_with_a_note(qtbot: Any, engine: Any, console: Any) -> None:
    show(qtbot, engine, console, mode="AUTONOMOUS", episode_active=True, step=12)
    settle(qtbot)
    console.note_field.setFocus()
    qtbot.keyClicks(console.note_field, "cube tipped at the end")
    assert console.note_field.text() == "cube tipped at the end"
    assert engine.commands == []  # typing a note is not driving
    qtbot.mouseClick(console.near_success_button, Qt.MouseButton.LeftButton)
    expected = Command(CommandName.STOP_EPISODE, outcome="near_success", note="cube tipped at the end")
    qtbot.waitUntil(lambda: engine.commands == [expected], timeout=3000)
    assert console.note_field.text() == ""


def test_rerecord_records_the_attempt_again(qtbot: Any, engine: Any, console: Any) -> None:
    show(qtbot, engine, console, mode="HUMAN", episode_active=True, step=12)
    settle(qtbot)
    qtbot.mouseClick(console.rerecord_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: engine.names() == [CommandName.RERECORD], timeout=3000)


def test_help_lists_every_shortcut(qtbot: Any, engine: Any, console: Any) -> None:
    assert not console.help_overlay.isVisible()
    qtbot.keyClick(console, Qt.Key.Key_F1)
    assert console.help_overlay.isVisible()
    listed = dict(console.help_overlay.rows)
    assert {s.key for s in SHORTCUTS} | {k for k, _ in TELEOP_KEYS} == set(listed)
    assert set(console.shortcuts) == {s.action for s in SHORTCUTS}
    for action, shortcut in console.shortcuts.items():
        key = next(s.key for s in SHORTCUTS if s.action == action)
        assert shortcut.key().toString() == key
    texts = [label.text() for label in console.help_overlay.findChildren(QLabel)]
    assert any("F12" in t for t in texts)
    qtbot.keyClick(console, Qt.Key.Key_F1)
    assert not console.help_overlay.isVisible()


# -- 9: health ------------------------------------------------------------------------------
def test_unplugged_spacemouse_shows_red_in_the_health_panel(qtbot: Any, engine: Any, console: Any) -> None:
    items = (
        HealthItem("policy server", "ok", "11 ms"),
        HealthItem("SpaceMouse", "error", "unplugged"),
        HealthItem("recorder", "warning", "9 GB free"),
    )
    show(qtbot, engine, console, step=4, health=items)
    assert console.health_panel.levels == {
        "policy server": "ok",
        "SpaceMouse": "error",
        "recorder": "warning",
    }
    line = console.health_panel.line_for("SpaceMouse")
    assert line is not None and "unplugged" in line.text()
    assert LEVEL_COLORS["error"].name() in line.text()
    assert line is console.health_panel.lines[0]  # the worst first
    image = line.grab().toImage()
    reds = [image.pixelColor(x, y) for x in range(min(20, image.width())) for y in range(image.height())]
    assert LEVEL_COLORS["error"] in reds or any(c.red() > 150 and c.green() < 90 for c in reds)


# -- 10: session -----------------------------------------------------------------------------
def test_operator_task_and_session_figures(qtbot: Any, engine: Any, console: Any) -> None:
    figures = SessionFigures(
        operator="",
        task="pick-place-v3",
        attempts=4,
        successes=2,
        near_successes=1,
        failures=1,
        interventions=6,
        first_intervention_s=(2.0, 4.0, 6.0),
    )
    console.session_panel.operator.setFocus()
    qtbot.keyClicks(console.session_panel.operator, "Ana")
    show(qtbot, engine, console, step=4, session=figures)
    assert engine.commands == []  # a name typed is not teleop
    panel = console.session_panel
    assert panel.operator.text() == "Ana" and panel.task.text() == "pick-place-v3"
    assert panel.attempts.text() == "4" and panel.verdicts.text() == "2 / 1 / 1"
    assert panel.success_rate.text() == "50 %"
    assert panel.interventions.text() == "1.50"
    assert panel.first_intervention.text() == "4.0 s (mean)"
    # The name goes to the engine with the next Start, to be stored with the attempts.
    show(qtbot, engine, console, mode="IDLE", episode_active=False, step=0, session=figures)
    qtbot.mouseClick(console.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(engine.commands), timeout=3000)
    assert engine.commands == [Command(CommandName.START_EPISODE, operator="Ana")]


# -- 13: fits a 1366×768 screen --------------------------------------------------------------
def test_window_fits_1366_by_768_with_nothing_cut_off(qtbot: Any, engine: Any, console: Any) -> None:
    hint = console.minimumSizeHint()
    assert hint.width() <= SCREEN[0] and hint.height() <= SCREEN[1] - TITLE_BAR
    show(
        qtbot,
        engine,
        console,
        mode="IDLE",
        episode_active=False,
        step=0,
        episode_id="5c1e0a9d7b2f",
        previews={"wrist": sample_frame(120, 160)},
        timing={"period_ms": 50.0, "loop_ms": 4.1, "policy_ms": 11.8, "overruns": 12.0},
        health=(HealthItem("policy server", "error", "not answering (tcp://127.0.0.1:5555) for 30 s"),),
        session=SessionFigures("Ana", "pick-place-v3", 120, 80, 20, 20, 240, (3.0,)),
        clock=AttemptClock(123.4, 600.0, 42.0),
    )
    console.resize(SCREEN[0], SCREEN[1] - TITLE_BAR)
    qtbot.wait(100)
    assert console.width() == SCREEN[0] and console.height() == SCREEN[1] - TITLE_BAR
    cut = []
    for label in console.findChildren(QLabel):
        if (
            not label.isVisible()
            or label.wordWrap()
            or (label.pixmap() is not None and not label.pixmap().isNull())
        ):
            continue
        if label.sizeHint().width() > label.width() + 1:
            cut.append(label.text())
    for button in console.findChildren(QPushButton):
        if button.isVisible() and button.sizeHint().width() > button.width() + 1:
            cut.append(button.text())
    assert cut == []
    assert console.centralWidget().geometry().bottom() <= SCREEN[1] - TITLE_BAR
