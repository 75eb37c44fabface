"""An engine process that stops answering (SIGSTOP): the window stays responsive, says so within a
second, and recovers when the engine runs again.

The engine here is a separate process speaking the real engine protocol over real ZeroMQ sockets
(``fake_engine.py``), so SIGSTOP freezes both its status stream and its command socket, as a hung
engine would.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PyQt6.QtCore import Qt, QTimer

from takeover.app.gui.console.engine_link import EngineLink
from takeover.app.gui.console.window import NOT_ANSWERING_TEXT, MainWindow
from takeover.app.net.children import start_child

from .conftest import save_console_screenshot

pytestmark = [pytest.mark.gui, pytest.mark.slow]

FAKE_ENGINE = Path(__file__).with_name("fake_engine.py")
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "console-not-answering.png"
COMMAND_TIMEOUT_MS = 1500
"""Long on purpose: a console that waited for its commands would freeze for this long."""
MAX_EVENT_GAP_S = 0.25
"""The longest the event loop may go without running a 10 ms timer while the engine is stalled."""


@pytest.fixture
def engine_process() -> Iterator[tuple[int, dict[str, str]]]:
    child = start_child([sys.executable, str(FAKE_ENGINE)], "fake engine")
    try:
        bound = child.wait_ready(("status", "command"), timeout_s=30)
        yield child.pid, bound
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGCONT)  # a test that failed mid-stall leaves it stopped
        child.stop(timeout_s=5)


def test_stalled_engine_leaves_the_window_responsive(
    qtbot: Any, engine_process: tuple[int, dict[str, str]], tmp_path: Path
) -> None:
    pid, bound = engine_process
    link = EngineLink(bound["status"], bound["command"], command_timeout_ms=COMMAND_TIMEOUT_MS)
    window = MainWindow(link, title="Takeover")
    qtbot.addWidget(window)
    link.start()
    window.resize(1200, 760)
    window.close_answer_timeout_s = 0.05  # closed with its attempt running: nobody answers
    window.end_wait_s = 0.1  # a fake engine's attempt never ends by itself
    window.show()
    qtbot.waitUntil(lambda: link.connected and window.status is not None, timeout=10_000)
    assert window.mode_label.text() == "AUTONOMOUS"

    ticks: list[float] = []
    probe = QTimer()
    probe.setInterval(10)
    probe.timeout.connect(lambda: ticks.append(time.monotonic()))
    probe.start()

    os.kill(pid, signal.SIGSTOP)
    stopped = time.monotonic()
    qtbot.mouseClick(window.hold_button, Qt.MouseButton.LeftButton)  # into the stalled engine
    qtbot.waitUntil(lambda: window.mode_label.text() == NOT_ANSWERING_TEXT, timeout=3000)
    noticed_s = time.monotonic() - stopped
    assert noticed_s < 1.0
    assert window.connection_label.text() == "engine: NOT ANSWERING"
    assert window.camera.stale  # the last picture is not shown as live ...
    assert not any(box.isEnabled() for box in window.readouts)  # ... nor the last figures as current
    # The hold's own reply timeout passes too, and the window keeps running all along.
    qtbot.waitUntil(lambda: "no reply to 'hold'" in window.message_label.text(), timeout=5000)
    assert window.message_label.text().startswith("engine not answering")
    assert window.hold_button.isEnabled() and window.estop_button.isEnabled()
    stalled_s = time.monotonic() - stopped
    save_console_screenshot(window, tmp_path / "engine-not-answering.png")
    if os.environ.get("TAKEOVER_WRITE_DOCS_SCREENSHOT") == "1":
        save_console_screenshot(window, DOCS_SCREENSHOT)
    stall_ticks = [t for t in ticks if t > stopped]
    gaps = np.diff([stopped, *stall_ticks])
    print(
        f"noticed after {noticed_s:.3f} s, stalled {stalled_s:.2f} s, "
        f"longest event-loop gap {gaps.max():.3f} s"
    )
    assert stalled_s > COMMAND_TIMEOUT_MS / 1000  # the stall outlasted the command's timeout ...
    assert gaps.max() < MAX_EVENT_GAP_S  # ... and the event loop never waited for it

    os.kill(pid, signal.SIGCONT)
    qtbot.waitUntil(lambda: window.connection_label.text() == "engine: connected", timeout=3000)
    qtbot.waitUntil(
        lambda: window.mode_label.text() == "AUTONOMOUS" and not window.camera.stale, timeout=3000
    )
    assert all(box.isEnabled() for box in window.readouts)
    qtbot.mouseClick(window.estop_button, Qt.MouseButton.LeftButton)  # commands are carried out again
    qtbot.waitUntil(lambda: "carried out estop" in window.message_label.text(), timeout=3000)
    probe.stop()
    window.close()
