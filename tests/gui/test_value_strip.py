"""The value estimate in the console: the live strip and the alert, against the fake engine."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PyQt6.QtCore import QPoint, Qt

from takeover.app.engine.process import Engine
from takeover.app.engine.protocol import Command, CommandName
from takeover.app.engine.sockets import EngineEndpoints
from takeover.app.engine.status import StatusBoard
from takeover.app.gui.axis_ticks import round_ticks
from takeover.app.gui.console.value_strip import ALERT_BORDER, value_alert_text
from takeover.app.net.wire import WireError, encode
from takeover.app.runtime.config import ConfigError, parse_config
from takeover.recorder.testing import start_record, step_record

from .conftest import make_status

pytestmark = pytest.mark.gui


def _publish(qtbot: Any, engine: Any, window: Any, **fields: Any) -> None:
    """The fake engine publishes a status with these fields; wait until the window shows it."""
    engine.status = make_status(**fields)
    step, value = engine.status.step, engine.status.value
    qtbot.waitUntil(
        lambda: window.status is not None and (window.status.step, window.status.value) == (step, value)
    )


def _geometry(window: Any) -> list[tuple[int, int, int, int]]:
    widgets = (
        window.mode_label,
        window.instruction_label,
        window.value_alert_label,
        window.refusal_label,
        window.state_plot,
        window.value_strip,
        window.camera,
    )
    return [w.geometry().getRect() for w in widgets]


def test_the_alert_says_why_only_during_an_attempt_below_the_threshold() -> None:
    running = make_status(value=-0.93, value_alert=-0.8)
    assert value_alert_text(running) == "value estimate −0.93 below −0.80: the policy may be failing"
    assert value_alert_text(make_status(value=-0.5, value_alert=-0.8)) == ""
    assert value_alert_text(make_status(value=-0.93, value_alert=None)) == ""  # no threshold set
    assert value_alert_text(make_status(value=None, value_alert=-0.8)) == ""  # no value model
    assert value_alert_text(make_status(value=-0.93, value_alert=-0.8, episode_active=False)) == ""


def test_the_strip_plots_the_estimate_and_the_banner_flashes_below_the_threshold(
    qtbot: Any, engine: Any, console: Any, screenshot: Any, tmp_path: Path
) -> None:
    window = console
    before = _geometry(window)
    for step, value in enumerate((-0.2, -0.4, -0.6)):
        _publish(qtbot, engine, window, step=step + 1, value=value, value_alert=-0.8)
    qtbot.waitUntil(lambda: len(window.value_strip.samples) >= 3, timeout=3000)
    assert {v for _, v in window.value_strip.samples} == {-0.2, -0.4, -0.6}
    assert window.value_strip.threshold.isVisible() and window.value_strip.threshold.value() == -0.8
    assert window.value_alert_label.text() == "" and ALERT_BORDER not in window.mode_label.styleSheet()

    _publish(qtbot, engine, window, step=4, value=-0.93, value_alert=-0.8)
    assert window.value_alert_label.text() == "value estimate −0.93 below −0.80: the policy may be failing"
    assert window.mode_label.text() == "AUTONOMOUS"  # the banner still says who drives
    # The border flashes: on, then off, then on again.
    seen: set[bool] = set()
    qtbot.waitUntil(
        lambda: seen.add(ALERT_BORDER in window.mode_label.styleSheet()) or seen == {True, False},
        timeout=3000,
    )
    qtbot.waitUntil(lambda: ALERT_BORDER in window.mode_label.styleSheet(), timeout=3000)
    shot = Path(os.environ.get("TAKEOVER_VALUE_ALERT_SHOT", tmp_path / "value-alert.png"))
    assert screenshot(window, shot).stat().st_size > 10_000
    assert _geometry(window) == before  # nothing moved when the alert came

    _publish(qtbot, engine, window, step=5, value=-0.7, value_alert=-0.8)  # back above the threshold
    assert window.value_alert_label.text() == ""
    qtbot.wait(500)  # longer than a flash: the border stays off
    assert ALERT_BORDER not in window.mode_label.styleSheet()
    assert window.mode_label.styleSheet().count("background") == 1

    _publish(qtbot, engine, window, step=6, value=-0.95, value_alert=-0.8, episode_active=False, mode="IDLE")
    assert window.value_alert_label.text() == ""  # between attempts: no alert
    assert window.value_strip.samples == type(window.value_strip.samples)()  # a new attempt starts afresh
    assert _geometry(window) == before


def test_the_engine_reports_the_latest_estimate_of_the_attempt() -> None:
    board = StatusBoard()
    board.update(value_alert=-0.8)
    board.on_episode_start(start_record("ep-1"))
    chunk = replace(step_record(0, 1.0), extras={"value": np.array([-0.9], np.float32)})
    board.on_step(chunk)
    assert board.snapshot().value == pytest.approx(-0.9) and board.snapshot().value_alert == -0.8
    board.on_step(step_record(1, 1.02))  # no chunk this step
    assert board.snapshot().value == pytest.approx(-0.9)  # kept until the next chunk
    board.on_episode_start(start_record("ep-2"))
    assert board.snapshot().value is None and board.snapshot().value_alert == -0.8


def test_the_threshold_comes_from_the_console_section_of_the_configuration() -> None:
    config = parse_config("[console]\nvalue_alert = -0.8\n", "test")
    assert config.console.value_alert == -0.8
    engine = Engine(config, EngineEndpoints("tcp://127.0.0.1:0", "tcp://127.0.0.1:0"))  # binds nothing yet
    assert engine.board.publishable().value_alert == -0.8  # published to any console that attaches
    assert parse_config("", "test").console.value_alert is None  # absent: no alert
    with pytest.raises(ConfigError, match=r"console\.value_alert: must be finite, got -inf"):
        parse_config("[console]\nvalue_alert = -inf\n", "test")


def _alert_commands(engine: Any) -> list[float | None]:
    return [c.value_alert for c in engine.commands if c.name is CommandName.VALUE_ALERT]


def test_the_operator_types_a_threshold_and_the_engine_is_told(
    qtbot: Any, engine: Any, console: Any, screenshot: Any, tmp_path: Path
) -> None:
    window = console
    _publish(qtbot, engine, window, step=3, value=-0.42, value_alert=None)
    assert window.alert_button.text() == "off"
    qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.value_alert_dialog is not None and window.value_alert_dialog.isVisible())
    dialog = window.value_alert_dialog
    assert "The latest estimate: −0.42." in dialog.intro.text()
    qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)  # again: the same dialog
    assert window.value_alert_dialog is dialog
    dialog.field.setText("abc")
    assert dialog.problem.text() == "not a number: 'abc'" and not dialog.ok.isEnabled()
    qtbot.keyClick(dialog.field, Qt.Key.Key_Return)  # Enter on a bad number keeps the dialog open
    assert dialog.isVisible() and _alert_commands(engine) == []
    dialog.field.setText("inf")
    assert "finite" in dialog.problem.text() and not dialog.ok.isEnabled()
    dialog.field.setText("\N{MINUS SIGN}0.8")  # as the console writes it
    assert dialog.problem.text() == "" and dialog.ok.isEnabled()
    screenshot(dialog, tmp_path / "value-alert-dialog.png")
    qtbot.keyClick(dialog.field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: _alert_commands(engine) == [-0.8])
    assert not dialog.isVisible()

    _publish(qtbot, engine, window, step=4, value=-0.42, value_alert=-0.8)  # the engine says it back
    assert window.alert_button.text() == "below −0.80"
    qtbot.mouseClick(window.alert_button, Qt.MouseButton.LeftButton)  # the button opens it too
    qtbot.waitUntil(lambda: dialog.isVisible())
    again = window.value_alert_dialog
    assert again is dialog and again.field.text() == "-0.8"  # the current threshold, to edit
    assert dialog.problem.text() == "" and dialog.ok.isEnabled()
    again.off.click()
    qtbot.waitUntil(lambda: _alert_commands(engine) == [-0.8, None])
    assert not again.isVisible()


def test_the_dialog_never_keeps_the_operator_from_the_robot(qtbot: Any, engine: Any, console: Any) -> None:
    # It is not modal: the window's buttons still work, and F12 e-stops from inside the dialog.
    window = console
    _publish(qtbot, engine, window, step=3, value=-0.42, value_alert=None)
    window.ask_value_alert()
    dialog = window.value_alert_dialog
    qtbot.waitUntil(lambda: dialog.isVisible())
    assert not dialog.isModal()
    dialog.activateWindow()
    dialog.field.setFocus()
    qtbot.keyClick(dialog.field, Qt.Key.Key_F12)
    qtbot.waitUntil(lambda: CommandName.ESTOP in engine.names())
    assert dialog.isVisible() and dialog.field.text() == ""  # F12 typed nothing
    qtbot.mouseClick(window.takeover_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: CommandName.TAKEOVER in engine.names())
    window.close()  # closing the window closes the dialog with it
    assert not dialog.isVisible()
    assert _alert_commands(engine) == []


def test_a_right_click_on_the_strip_alerts_below_the_height_clicked(
    qtbot: Any, engine: Any, console: Any
) -> None:
    window = console
    for step, value in enumerate((0.0, -0.5, -1.0)):
        _publish(qtbot, engine, window, step=step + 1, value=value, value_alert=None)
    strip = window.value_strip
    qtbot.waitUntil(lambda: len(strip.samples) >= 3)
    plot = strip.plot
    pos = QPoint(plot.width() // 2, plot.height() // 2)
    here = strip.value_at(pos)
    low, high = plot.getPlotItem().vb.viewRange()[1]
    assert low < here < high  # the height in the value's own units
    plot.customContextMenuRequested.emit(pos)  # what a right click there does
    assert strip.menu is not None
    actions = [a for a in strip.menu.actions() if not a.isSeparator()]
    assert [a.text() for a in actions] == [
        f"Alert below {here:.2f} (here)".replace("-", "\N{MINUS SIGN}"),
        "Alert below a value…",
        "No value alert",
    ]
    assert not actions[2].isEnabled()  # no alert to turn off
    actions[0].trigger()
    qtbot.waitUntil(lambda: _alert_commands(engine) == [here])
    strip.menu.close()

    _publish(qtbot, engine, window, step=4, value=-1.0, value_alert=here)
    plot.customContextMenuRequested.emit(pos)
    off = strip.menu.actions()[2]
    assert off.isEnabled()
    off.trigger()
    qtbot.waitUntil(lambda: _alert_commands(engine) == [here, None])
    strip.menu.close()


def test_the_engine_takes_a_threshold_live_and_refuses_one_that_is_not_finite() -> None:
    engine = Engine(parse_config("", "test"), EngineEndpoints("tcp://127.0.0.1:0", "tcp://127.0.0.1:0"))
    assert engine.board.publishable().value_alert is None
    assert engine._handle(Command(CommandName.VALUE_ALERT, value_alert=-0.6)) == ""  # no runtime needed
    status = engine.board.publishable()
    assert status.value_alert == -0.6
    assert status.message == "value alert: the console alerts while the value estimate is below -0.6"
    assert engine._handle(Command(CommandName.VALUE_ALERT)) == ""
    assert engine.board.publishable().value_alert is None
    assert engine.board.publishable().message == "value alert off"
    with pytest.raises(ValueError, match="finite"):
        Command(CommandName.VALUE_ALERT, value_alert=float("nan"))
    sent = encode({"type": "command", "name": "value_alert", "value_alert": float("inf")})
    with pytest.raises(WireError, match="'value_alert' must be a finite number or nil, got inf"):
        Command.decode(sent)
    # Only the console that holds the engine sets it (a watching one may hold and e-stop only).
    engine.viewers.attach("console-a")
    refused = engine.viewers.refusal(Command(CommandName.VALUE_ALERT, value_alert=-1.0, viewer="console-b"))
    assert "another console is attached (console-a)" in refused


def test_the_value_axis_has_one_or_two_round_labels() -> None:
    # 46 pixels high: pyqtgraph's own ticks put four labels on top of each other.
    assert round_ticks(-3.0, 0.0) == [(-2.0, "−2"), (0.0, "0")]
    assert round_ticks(-1.0, -0.8) == [(-1.0, "−1.0"), (-0.8, "−0.8")]
    assert round_ticks(-0.95, -0.15) == [(-0.5, "−0.5")]
    assert [label for _, label in round_ticks(-0.298, -0.294)] == ["−0.295"]
    for low, high in ((0.0, 1.0), (-2.43, -0.3), (-0.05, 0.05), (-10.0, -9.99), (1e-3, 2e-3)):
        ticks = round_ticks(low, high)
        assert 1 <= len(ticks) <= 2 and all(low <= v <= high for v, _ in ticks), (low, high, ticks)
        assert len({label for _, label in ticks}) == len(ticks)
    assert round_ticks(1.0, 1.0) == [] and round_ticks(0.0, float("nan")) == []
    # The review screen's taller plots take up to three.
    labels = [label for _, label in round_ticks(-0.298, -0.294, most=3)]
    assert labels == ["−0.298", "−0.296", "−0.294"]
