"""The Settings dialog and what the console shows of its engine: the real widgets, offscreen.

The dialog is built from the configuration's classes, refuses what the file would refuse (with
the file's words), saves to the file and, in a console that started its engine, restarts it with
the saved settings (against the real `takeover engine` on a fake robot).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication, QCheckBox, QComboBox, QLabel, QLineEdit

from takeover.app.cli.console import OwnedEngine
from takeover.app.engine.attach import viewer_name
from takeover.app.engine.protocol import CommandName
from takeover.app.gui.console.engine_link import EngineLink
from takeover.app.gui.console.session import (
    ConsoleOptions,
    ConsoleSession,
    identity_text,
    window_title,
)
from takeover.app.gui.console.settings import PAGES, SettingsDialog, SettingsTarget
from takeover.app.gui.console.window import MainWindow
from takeover.app.net.children import ipc_endpoint, private_ipc_dir
from takeover.app.runtime.config import AppConfig, load_config, parse_config
from takeover.app.runtime.config_fields import with_settings

from .conftest import make_status, save_console_screenshot
from .fake_engine import FakeEngine

pytestmark = pytest.mark.gui

DOCS = Path(__file__).resolve().parents[2] / "docs"


def line(dialog: SettingsDialog, key: str) -> QLineEdit:
    editor = dialog.editors[key]
    assert isinstance(editor, QLineEdit)
    return editor


def test_the_dialog_shows_the_configuration_keys_and_refuses_what_the_file_would(
    qtbot: Any, tmp_path: Path
) -> None:
    path = tmp_path / "takeover.toml"
    path.write_text("# ours\n[loop]\nrate_hz = 10.0\n")
    target = SettingsTarget(load_config(path), path, {"store.path": "--store"})
    dialog = SettingsDialog(target)
    qtbot.addWidget(dialog)
    dialog.show()
    shown = {g.section for _, groups in PAGES for g in groups}
    assert shown == {"station", "policy", "store", "operator", "loop", "keyboard", "spacemouse", "console"}
    for key in ("station.kind", "station.url", "station.task", "policy.url", "store.path", "loop.human_gain"):
        assert key in dialog.editors
    for key in ("spacemouse.scale", "spacemouse.axis_map", "spacemouse.axis_sign", "keyboard.speed"):
        assert key in dialog.editors
    assert isinstance(dialog.editors["station.kind"], QComboBox)
    assert isinstance(dialog.editors["spacemouse.takeover_on_motion"], QCheckBox)
    assert line(dialog, "spacemouse.axis_map").text() == "0, 1, 2, 3, 4, 5"
    assert "Robot axis i reads device axis" in line(dialog, "spacemouse.axis_map").toolTip()
    assert not dialog.editors["store.path"].isEnabled()  # set on the command line: it wins
    assert "Set on the command line by --store" in dialog.editors["store.path"].toolTip()

    line(dialog, "spacemouse.axis_map").setText("0, 1, 2, 3, 4, 4")
    assert dialog.problem.text().startswith("spacemouse.axis_map must be a permutation of 0..5")
    assert "c62828" in line(dialog, "spacemouse.axis_map").styleSheet()
    assert dialog.save_button is not None and not dialog.save_button.isEnabled()
    line(dialog, "spacemouse.axis_map").setText("1, 0, 2, 3, 4, 5")
    line(dialog, "loop.human_gain").setText("0")
    assert (
        "loop.human_gain: the human gain (device twist to delta action) must be above 0"
        in dialog.problem.text()
    )
    assert line(dialog, "spacemouse.axis_map").styleSheet() == ""
    line(dialog, "loop.human_gain").setText("2.5")
    line(dialog, "spacemouse.hold_button").setText("LEFT")
    assert dialog.problem.text() == "" and dialog.save_button.isEnabled()
    assert dialog.apply_button is None  # nothing to restart: Save only
    save_console_screenshot(dialog, tmp_path / "settings.png")

    dialog.save_button.click()
    assert dialog.result() == SettingsDialog.DialogCode.Accepted and not dialog.apply
    saved = load_config(path)
    assert saved == dialog.saved and saved.loop.human_gain == 2.5 and saved.loop.rate_hz == 10.0
    assert saved.spacemouse.axis_map == (1, 0, 2, 3, 4, 5) and saved.spacemouse.hold_button == "LEFT"
    assert path.read_text().startswith("# ours\n[loop]\nrate_hz = 10.0\n")


def test_the_value_alert_is_a_setting_empty_for_none(qtbot: Any, tmp_path: Path) -> None:
    path = tmp_path / "takeover.toml"
    dialog = SettingsDialog(SettingsTarget(AppConfig(), path))
    qtbot.addWidget(dialog)
    dialog.show()
    field = line(dialog, "console.value_alert")
    assert field.text() == "" and "value estimate falls below" in field.toolTip()
    field.setText("nan")
    assert "console.value_alert" in dialog.problem.text() and "nan" in dialog.problem.text()
    assert dialog.save_button is not None and not dialog.save_button.isEnabled()
    field.setText("-0.8")
    assert dialog.problem.text() == "" and dialog.save_button.isEnabled()
    dialog.save_button.click()
    assert load_config(path).console.value_alert == -0.8


def test_a_misspelt_task_is_refused_with_the_closest_names(qtbot: Any, tmp_path: Path) -> None:
    path = tmp_path / "takeover.toml"
    dialog = SettingsDialog(SettingsTarget(AppConfig(), path))
    qtbot.addWidget(dialog)
    line(dialog, "station.task").setText("pick-plcae-v3")
    assert dialog.save_button is not None
    dialog.save_button.click()
    assert "Meta-World has no task 'pick-plcae-v3': did you mean pick-place-v3" in dialog.problem.text()
    assert not path.exists() and dialog.saved is None


def test_an_engine_the_console_did_not_start_is_shown_read_only(qtbot: Any) -> None:
    config = with_settings(AppConfig(), {"station.kind": "remote", "station.url": "tcp://robot-pc:5556"})
    dialog = SettingsDialog(SettingsTarget(config, None, note="its settings"), busy="")
    qtbot.addWidget(dialog)
    assert all(not editor.isEnabled() for editor in dialog.editors.values())
    assert dialog.save_button is None and dialog.apply_button is None
    assert line(dialog, "station.url").text() == "tcp://robot-pc:5556"
    busy = SettingsDialog(
        SettingsTarget(AppConfig(), Path("x.toml"), restart=lambda: ""), busy="an attempt is running"
    )
    qtbot.addWidget(busy)
    assert busy.apply_button is not None and not busy.apply_button.isEnabled()
    assert busy.apply_button.toolTip() == "an attempt is running"
    line(busy, "loop.human_gain").setText("3")
    assert busy.save_button is not None and busy.save_button.isEnabled() and not busy.apply_button.isEnabled()


def test_the_title_and_status_bar_name_the_station_policy_and_store(qtbot: Any) -> None:
    status = make_status(station="pick-place-v3 (metaworld)", policy_id="mlp-3f2a", store="/data/store")
    assert (
        window_title(status) == "Takeover — pick-place-v3 (metaworld) · policy mlp-3f2a · store /data/store"
    )
    assert (
        window_title(None) == "Takeover"
        and window_title(make_status(), read_only=True) == "Takeover (read-only)"
    )
    assert (
        identity_text(status) == "station: pick-place-v3 (metaworld)   policy: mlp-3f2a   store: /data/store"
    )
    engine = FakeEngine()
    engine.status = status
    engine.start()
    link = EngineLink(engine.status_endpoint, engine.command_endpoint, viewer="ana@ws pid 1")
    window = MainWindow(link)
    window.close_answer_timeout_s = 0.05  # the attempt shown is left running: nobody answers
    window.end_wait_s = 0.1  # a fake engine's attempt never ends by itself
    qtbot.addWidget(window)
    session = ConsoleSession(window, link, ConsoleOptions(), "Takeover")
    try:
        link.start()
        window.show()
        qtbot.waitUntil(lambda: window.windowTitle() == window_title(status), timeout=5000)
        assert session.identity.text() == identity_text(status)
        qtbot.waitUntil(lambda: any(c.name.value == "attach" for c in engine.commands), timeout=5000)
        assert all(c.viewer == "ana@ws pid 1" for c in engine.commands)  # every command names its console
        assert not session.read_only
        window.close()
    finally:
        link.stop()
        engine.close()


@pytest.fixture
def owned_engine(tmp_path: Path) -> Iterator[tuple[OwnedEngine, Path, str, str]]:
    """The real engine as `takeover run` starts it (a child on ipc:// sockets), on a fake robot."""
    from tests.engine.test_attach import engine_config
    from tests.engine.test_engine_endpoints import Peers  # the fake robot and policy

    with Peers() as peers, private_ipc_dir() as folder:
        config, _ = engine_config(peers, tmp_path)
        status, command = ipc_endpoint(folder, "status"), ipc_endpoint(folder, "command")
        command_line = [sys.executable, "-m", "takeover.app.cli", "engine", "--config", str(config)]
        engine = OwnedEngine([*command_line, "--status-endpoint", status, "--command-endpoint", command])
        try:
            yield engine, config, *engine.start()
        finally:
            engine.stop()


@pytest.mark.slow
def test_save_and_restart_restarts_the_console_s_engine_with_the_file(
    qtbot: Any, owned_engine: tuple[OwnedEngine, Path, str, str]
) -> None:
    engine, path, status_ep, command_ep = owned_engine
    link = EngineLink(status_ep, command_ep, viewer=viewer_name(), command_timeout_ms=2000)
    window = MainWindow(link)
    qtbot.addWidget(window)
    target = lambda: SettingsTarget(load_config(path), path, {}, engine.restart)  # noqa: E731
    session = ConsoleSession(window, link, ConsoleOptions(settings=target), "Takeover")
    link.start()
    window.show()
    qtbot.waitUntil(lambda: session.engine_config != "", timeout=30000)  # attached
    assert parse_config(session.engine_config, "engine").loop.human_gain == 1.0

    def edit_and_apply() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, SettingsDialog):
            QTimer.singleShot(50, edit_and_apply)
            return
        line(dialog, "loop.human_gain").setText("2.5")
        if dialog.apply_button is None or not dialog.apply_button.isEnabled():
            dialog.reject()  # never leave it open: the test fails below
            return
        dialog.apply_button.click()

    QTimer.singleShot(50, edit_and_apply)
    window.settings_requested.emit()  # what the window's Settings button (or Ctrl+,) does
    assert load_config(path).loop.human_gain == 2.5
    qtbot.waitUntil(lambda: session.restarting is None, timeout=60000)
    assert session.restart_result == "the engine restarted with the new settings"
    # The window's link found the new engine on the same sockets and attached to it again.
    qtbot.waitUntil(
        lambda: link.connected and parse_config(session.engine_config, "engine").loop.human_gain == 2.5,
        timeout=30000,
    )
    assert not session.read_only
    window.close()
    link.stop()


def test_screenshot_of_the_settings_dialog(qtbot: Any, tmp_path: Path) -> None:
    """The Devices page with a value the file would refuse: the message, the field marked, Save off
    (docs/console-settings.png when TAKEOVER_WRITE_DOCS_SCREENSHOT is set)."""
    target = SettingsTarget(
        AppConfig(), Path.home() / ".config" / "takeover" / "config.toml", restart=lambda: ""
    )
    dialog = SettingsDialog(target)
    qtbot.addWidget(dialog)
    dialog.resize(640, 600)
    dialog.show()
    dialog.tabs.setCurrentIndex([title for title, _ in PAGES].index("Devices"))
    line(dialog, "spacemouse.axis_map").setText("0, 1, 2, 3, 4, 4")
    line(dialog, "loop.human_gain").setText("1.5")
    assert "Saved to ~/.config/takeover/config.toml" in dialog.findChildren(QLabel)[0].text()
    assert dialog.save_button is not None and not dialog.save_button.isEnabled()
    qtbot.waitExposed(dialog)
    path = save_console_screenshot(dialog, tmp_path / "settings.png")
    if os.environ.get("TAKEOVER_WRITE_DOCS_SCREENSHOT"):
        save_console_screenshot(dialog, DOCS / "console-settings.png")
    assert path.stat().st_size > 10_000


def test_the_leave_running_question_detaches_when_nobody_answers(qtbot: Any) -> None:
    engine = FakeEngine()
    engine.status = make_status(mode="IDLE", episode_active=False, step=0)
    engine.start()
    link = EngineLink(engine.status_endpoint, engine.command_endpoint, viewer="ana@ws pid 1")
    window = MainWindow(link)
    qtbot.addWidget(window)
    session = ConsoleSession(window, link, ConsoleOptions(owns_engine=False), "Takeover")
    session.answer_timeout_s = 0.3
    try:
        link.start()
        window.show()
        qtbot.waitUntil(lambda: window.status is not None, timeout=5000)
        window.close()  # asks "Leave it running?"; nobody is there to answer
        assert not window.isVisible()
        qtbot.waitUntil(lambda: CommandName.DETACH in engine.names(), timeout=3000)
        assert CommandName.QUIT not in engine.names()  # the engine it did not start runs on
    finally:
        link.stop()
        engine.close()
