"""run_gui: refuses cleanly without a display, runs the real event loop until the window closes."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication

from takeover.app.engine.protocol import CommandName
from takeover.app.gui.console.app import NO_DISPLAY_EXIT_CODE, display_available, run_gui
from takeover.app.gui.console.window import MainWindow

from .conftest import make_status

pytestmark = pytest.mark.gui


@pytest.mark.parametrize(
    ("env", "platform", "expected"),
    [
        ({}, "linux", False),
        ({"DISPLAY": ":0"}, "linux", True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux", True),
        ({"QT_QPA_PLATFORM": "xcb"}, "linux", False),
        ({"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":99"}, "linux", True),
        ({"QT_QPA_PLATFORM": "wayland"}, "linux", False),
        ({}, "darwin", True),
        ({}, "win32", True),
    ],
)
def test_display_available(env: dict[str, str], platform: str, expected: bool) -> None:
    assert display_available(env, platform) is expected


@pytest.mark.skipif(sys.platform != "linux", reason="display detection by environment is for Linux")
def test_no_display_exits_2_with_advice() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    code = "from takeover.app.gui.console.app import run_gui; raise SystemExit(run_gui('tcp://127.0.0.1:9', 'tcp://127.0.0.1:9'))"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == NO_DISPLAY_EXIT_CODE
    assert "--headless" in result.stderr and "xvfb-run" in result.stderr


def test_run_gui_runs_until_window_closes(qapp: Any, engine: Any) -> None:
    engine.status = make_status(mode="IDLE", episode_active=False, step=0)  # closing asks nothing
    seen: list[tuple[str, Any]] = []
    attempts = [0]

    def close_when_live() -> None:
        attempts[0] += 1
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if windows and (windows[0].status is not None or attempts[0] > 100):
            seen.append((windows[0].windowTitle(), windows[0].link.status_thread))
            windows[0].close()
        elif attempts[0] <= 200:
            QTimer.singleShot(50, close_when_live)

    QTimer.singleShot(50, close_when_live)
    assert run_gui(engine.status_endpoint, engine.command_endpoint, title="Takeover (run_gui test)") == 0
    assert seen, "the console window never appeared"
    title, thread = seen[0]
    assert title == "Takeover (run_gui test)"
    assert engine.names()[-1] == CommandName.QUIT
    assert thread is not None and thread.isFinished()
    assert [w for w in QApplication.topLevelWidgets() if w.isVisible()] == []
