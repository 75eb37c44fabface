"""The accidents of an operator's shift, with the real console on the real engine and simulated
station (keyboard operator): a key pressed between attempts, a double-click on Start, the e-stop
key, and closing the window mid-attempt; what the store holds afterwards."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtTest import QTest
from PyQt6.QtWidgets import QApplication, QMessageBox

from takeover.app.gui.console.window import MainWindow
from takeover.storage.schema import ControlSource, EventKind
from takeover.storage.store import Store

from .conftest import in_process_engine
from .test_console_engine_fields import keyboard_config, open_console

pytestmark = [pytest.mark.gui, pytest.mark.sim, pytest.mark.slow]


@pytest.fixture
def console_on_engine(qtbot: Any, tmp_path: Path) -> Iterator[tuple[MainWindow, Path, threading.Thread]]:
    store = tmp_path / "store"
    Store.create(store).close()
    with in_process_engine(keyboard_config(store)) as (engine, thread):
        window = open_console(qtbot, engine)
        yield window, store, thread
        window.close()


def test_shift_accidents_leave_the_data_clean(qtbot: Any, console_on_engine: Any) -> None:
    window, store_root, engine_thread = console_on_engine

    def shown(pred: Any, timeout: int = 20000) -> None:
        qtbot.waitUntil(lambda: window.status is not None and pred(window.status), timeout=timeout)

    shown(lambda s: s.message.startswith("ready") or s.readiness == "ready", timeout=90000)
    # 2. T between attempts is refused on screen, and not kept for the next attempt.
    qtbot.keyPress(window, Qt.Key.Key_T)
    qtbot.keyRelease(window, Qt.Key.Key_T)
    assert window.refusal_label.text().startswith("refused: no attempt is running")
    # 1. A double-click on Start, then two more clicks where Start was: one attempt, not ended.
    start_at = window.start_button.rect().center()
    qtbot.mouseClick(window.start_button, Qt.MouseButton.LeftButton, pos=start_at)
    qtbot.mouseDClick(window.start_button, Qt.MouseButton.LeftButton, pos=start_at)
    shown(lambda s: s.episode_active)
    target = window.start_button.mapTo(window, start_at)
    for _ in range(2):
        QTest.mouseClick(window.childAt(target) or window, Qt.MouseButton.LeftButton)
    shown(lambda s: s.step > 25)
    assert window.status.episode_active and window.status.mode == "AUTONOMOUS"  # no takeover at step 0
    # 8. The e-stop key works during the attempt; reset leaves the robot held.
    qtbot.keyClick(window, Qt.Key.Key_F12)
    shown(lambda s: s.mode == "ESTOP")
    qtbot.mouseClick(window.reset_button, Qt.MouseButton.LeftButton)
    shown(lambda s: s.mode == "HOLD")
    # 4. Closing mid-attempt: the operator ends it as a failure.
    window.close_answer_timeout_s = 30.0
    asked: list[str] = []

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, answer)
            return
        asked.append(box.text())
        [failure] = [b for b in box.buttons() if b.text() == "End as failure"]
        failure.click()

    QTimer.singleShot(20, answer)
    window.close()
    assert asked == ["An attempt is running. What should become of it?"]
    qtbot.waitUntil(lambda: not engine_thread.is_alive(), timeout=20000)  # QUIT: saved, then ended

    with Store.open(store_root) as store:
        [rec] = store.list_episodes()  # one attempt from all those clicks
        episode = store.read_episode(rec.episode_id)
    assert rec.outcome == "failure"
    kinds = [e.kind for e in episode.events]
    assert EventKind.TAKEOVER not in kinds
    assert kinds[0] == EventKind.START and EventKind.ESTOP in kinds and EventKind.RESET in kinds
    assert int(ControlSource.HUMAN) not in set(episode.control_source)
