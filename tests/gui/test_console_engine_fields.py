"""The real console against the real engine on the simulated station, for what the engine
reports and stores beyond the attempt itself: the operator's verdict with a note in the catalog,
the attempt clock that HOLD pauses, and a failed start with its cause and remedies.

These need the engine to fill Status.clock, Status.readiness / problem and to store the note
(Command.note) with the episode.

A SpaceMouse is on a fake HID transport (the real pyspacemouse decoding the bytes a SpaceMouse
Compact sends); the engine runs in this process (a thread) so that the fake transport is the one
it opens.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PyQt6.QtCore import Qt

from takeover.app.engine.process import Engine
from takeover.app.gui.console.engine_link import EngineLink
from takeover.app.gui.console.panels import CLICK_GUARD_S, ProblemPanel
from takeover.app.gui.console.window import MainWindow
from takeover.storage.schema import ControlSource, EventKind
from takeover.storage.store import Store
from takeover.teleop.testing import SpaceMouseReports, install_fake_hid

from .conftest import in_process_engine

pytestmark = [pytest.mark.gui, pytest.mark.sim, pytest.mark.slow]

NOTE = "grasped late; cube at the edge of the target"


@pytest.fixture
def engine_with_spacemouse(tmp_path: Path) -> Iterator[tuple[Engine, Any, Path]]:
    store = tmp_path / "store"
    Store.create(store).close()
    config = f'[operator]\nkind = "spacemouse"\n[store]\npath = "{store}"\n[loop]\nmax_steps = 400\n'
    reports = SpaceMouseReports("SpaceMouseCompact")
    device = reports.device()
    with install_fake_hid(None, [device]), in_process_engine(config) as (engine, _thread):
        yield engine, (reports, device), store


def test_spacemouse_takeover_then_near_success_with_a_note_lands_in_the_catalog(
    qtbot: Any, engine_with_spacemouse: Any
) -> None:
    engine, (reports, device), store_root = engine_with_spacemouse
    window = open_console(qtbot, engine)

    def shown(pred: Any, timeout: int = 20000) -> None:
        qtbot.waitUntil(lambda: window.status is not None and pred(window.status), timeout=timeout)

    shown(lambda s: s.message.startswith("ready") or s.readiness == "ready", timeout=90000)
    qtbot.mouseClick(window.start_button, Qt.MouseButton.LeftButton)
    shown(lambda s: s.episode_active and s.mode == "AUTONOMOUS" and s.step > 5)

    device.push(reports.motion(z=0.9))  # the operator lifts the cap: the SpaceMouse takes over
    shown(lambda s: s.mode == "HUMAN")
    takeover_step = window.status.step
    shown(lambda s: s.step > takeover_step + 10)
    device.push(reports.motion())  # lets go of the cap
    qtbot.mouseClick(window.handback_button, Qt.MouseButton.LeftButton)
    shown(lambda s: s.mode == "AUTONOMOUS")  # after the ramp
    qtbot.wait(int(CLICK_GUARD_S * 1000))
    window.note_field.setText(NOTE)
    qtbot.mouseClick(window.near_success_button, Qt.MouseButton.LeftButton)
    shown(lambda s: not s.episode_active and s.episodes_done == 1)
    window.close()

    with Store.open(store_root) as store:
        [rec] = store.list_episodes()
        episode = store.read_episode(rec.episode_id)
    assert rec.outcome == "near_success" and rec.operator == "spacemouse"
    assert NOTE in (getattr(rec, "note", None), getattr(episode, "note", None))
    kinds = [e.kind for e in episode.events]
    assert kinds[:2] == [EventKind.START, EventKind.TAKEOVER] and kinds[-1] == EventKind.END
    assert EventKind.HANDBACK in kinds
    start = next(e.step for e in episode.events if e.kind == EventKind.TAKEOVER)
    stop = next(e.step for e in episode.events if e.kind == EventKind.HANDBACK)
    assert 0 < start < stop
    assert set(episode.control_source[start:stop]) == {int(ControlSource.HUMAN)}
    assert set(episode.control_source[:start]) == {int(ControlSource.POLICY)}
    assert (episode.action[start:stop, 2] > 0).any()  # the cap lifted: the arm went up


def keyboard_config(store: Path) -> str:
    return f'[operator]\nkind = "keyboard"\n[store]\npath = "{store}"\n[loop]\nmax_steps = 400\n'


def open_console(qtbot: Any, engine: Engine) -> MainWindow:
    status_ep, command_ep = engine.bind()
    link = EngineLink(status_ep, command_ep, command_timeout_ms=2000)
    window = MainWindow(link, title="Takeover")
    qtbot.addWidget(window)
    window.close_answer_timeout_s = 0.05
    link.start()
    window.show()
    return window


def test_hold_pauses_the_attempt_clock(qtbot: Any, tmp_path: Path) -> None:
    store = tmp_path / "store"
    Store.create(store).close()
    with in_process_engine(keyboard_config(store)) as (engine, _thread):
        window = open_console(qtbot, engine)

        def shown(pred: Any, timeout: int = 20000) -> None:
            qtbot.waitUntil(lambda: window.status is not None and pred(window.status), timeout=timeout)

        shown(lambda s: s.readiness == "ready", timeout=30000)
        qtbot.mouseClick(window.start_button, Qt.MouseButton.LeftButton)
        shown(lambda s: s.episode_active and s.clock is not None and s.clock.elapsed_s > 0.3)
        limit = window.status.clock.limit_s
        assert window.time_value.text().endswith(f"of {limit:g} s")
        qtbot.mouseClick(window.hold_button, Qt.MouseButton.LeftButton)
        shown(lambda s: s.mode == "HOLD")
        held_at = window.status.clock
        qtbot.wait(1500)
        now = window.status.clock
        assert now.elapsed_s - held_at.elapsed_s < 0.2  # the clock stands still while held
        assert now.held_s - held_at.held_s > 1.2
        assert window.held_value.text() == f"{now.held_s:.1f} s"
        qtbot.mouseClick(window.resume_button, Qt.MouseButton.LeftButton)
        shown(lambda s: s.mode != "HOLD" and s.clock is not None and s.clock.elapsed_s > now.elapsed_s + 0.3)
        assert window.status.clock.limit_s == limit
        window.close()


def test_a_missing_spacemouse_shows_the_cause_and_the_keyboard_way_out(qtbot: Any, tmp_path: Path) -> None:
    store = tmp_path / "store"
    Store.create(store).close()
    config = f'[operator]\nkind = "spacemouse"\n[store]\npath = "{store}"\n'
    with install_fake_hid(None, []), in_process_engine(config) as (engine, _thread):  # no SpaceMouse
        window = open_console(qtbot, engine)

        def shown(pred: Any, timeout: int = 20000) -> None:
            qtbot.waitUntil(lambda: window.status is not None and pred(window.status), timeout=timeout)

        shown(lambda s: s.readiness == "failed", timeout=30000)
        panel: ProblemPanel = window.problem_panel
        assert panel.isVisible() and "SpaceMouse" in panel.cause.text()
        assert not window.start_button.isEnabled()
        assert window.connection_label.text() != "engine: connected"
        assert panel.keyboard_button.isVisible()
        qtbot.mouseClick(panel.keyboard_button, Qt.MouseButton.LeftButton)
        shown(lambda s: s.readiness == "ready", timeout=30000)
        assert not panel.isVisible() and window.start_button.isEnabled()
        window.close()
