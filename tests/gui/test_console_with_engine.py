"""The real console against the real engine process: simulator, policy server, recorder, store.

This is README command 1 without a screen: `takeover run` starts the same engine process and
opens the same window. The test operates it as a person would (start, take over, drive with
the keyboard, hand back, say "success") and then checks what landed in the store.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PyQt6.QtCore import Qt

from takeover.app.net.children import ipc_endpoint, private_ipc_dir, start_child
from takeover.storage.schema import ControlSource, EventKind
from takeover.storage.store import Store

from .conftest import open_console, save_console_screenshot

pytestmark = [pytest.mark.gui, pytest.mark.sim, pytest.mark.slow]

DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "console.png"


@pytest.fixture
def live_engine(tmp_path: Path) -> Any:
    """The engine as `takeover run` starts it: a child on ipc:// sockets that dies with this process."""
    store = tmp_path / "store"
    store.mkdir()  # a store named on the command line must exist
    config = tmp_path / "wrist.toml"  # a free-running camera beside the station's own
    config.write_text('[[camera]]\nname = "wrist"\nkind = "synthetic"\nwidth = 320\nheight = 240\nfps = 15\n')
    with private_ipc_dir() as folder:
        cmd = [sys.executable, "-m", "takeover.app.cli", "engine", "--config", str(config)]
        cmd += ["--status-endpoint", ipc_endpoint(folder, "status")]
        cmd += ["--command-endpoint", ipc_endpoint(folder, "command")]
        cmd += ["--store", str(store), "--max-steps", "400"]
        env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
        engine = start_child(cmd, "engine", env=env)
        try:
            bound = engine.wait_ready(("status", "command"), timeout_s=60)
            yield bound["status"], bound["command"], store, engine
        finally:
            engine.stop(timeout_s=10)


def test_operator_session_lands_in_the_store(qtbot: Any, live_engine: Any, tmp_path: Path) -> None:
    status_ep, command_ep, store_root, proc = live_engine
    window, shown = open_console(qtbot, status_ep, command_ep)

    shown(lambda s: s.readiness == "ready", timeout=90000)  # policy server and simulator are up
    # Before the first attempt both cameras show the scene, live, in the configured order.
    assert list(window.cameras.views) == ["corner", "gripperPOV"]
    qtbot.waitUntil(
        lambda: all(v.seq >= 3 and not v.stale for v in window.cameras.views.values()), timeout=10000
    )
    qtbot.mouseClick(window.start_button, Qt.MouseButton.LeftButton)
    shown(lambda s: s.episode_active and s.mode == "AUTONOMOUS" and s.step > 3)
    # Both station cameras arrive on the engine's frame socket, each in a view of its own.
    qtbot.waitUntil(lambda: set(window.cameras.views) == {"corner", "gripperPOV"}, timeout=5000)
    qtbot.waitUntil(lambda: all(v.painted_fps() > 2 for v in window.cameras.views.values()), timeout=5000)
    assert window.camera.frame_size is not None and window.camera in window.cameras.views.values()
    assert all(v.seq > 2 and not v.stale for v in window.cameras.views.values())
    # The free-running camera is previewed live beside the station's camera.
    qtbot.waitUntil(lambda: "wrist" in window.previews and not window.previews["wrist"].stale, timeout=5000)
    assert window.previews["wrist"].isVisible()

    qtbot.mouseClick(window.takeover_button, Qt.MouseButton.LeftButton)
    shown(lambda s: s.mode == "HUMAN")
    takeover_step = window.status.step
    qtbot.keyPress(window, Qt.Key.Key_R)  # drive the end effector up
    shown(lambda s: s.step > takeover_step + 10)
    qtbot.keyRelease(window, Qt.Key.Key_R)
    timing = window.timing_value.text()
    assert "period" in timing and "dropped corner 0" in timing  # honest time and frame counts, live
    save_console_screenshot(window, tmp_path / "console.png")
    if os.environ.get("TAKEOVER_WRITE_DOCS_SCREENSHOT") == "1":
        save_console_screenshot(window, DOCS_SCREENSHOT)

    qtbot.mouseClick(window.handback_button, Qt.MouseButton.LeftButton)
    shown(lambda s: s.mode == "AUTONOMOUS")  # after the ramp
    qtbot.mouseClick(window.estop_button, Qt.MouseButton.LeftButton)
    shown(lambda s: s.mode == "ESTOP")
    estop_step = window.status.step
    shown(lambda s: s.step > estop_step + 5 and s.mode == "ESTOP")  # latched
    qtbot.mouseClick(window.reset_button, Qt.MouseButton.LeftButton)
    shown(lambda s: s.mode == "HOLD")  # a reset never hands control to anyone
    qtbot.mouseClick(window.success_button, Qt.MouseButton.LeftButton)
    shown(lambda s: not s.episode_active and s.episodes_done == 1)

    window.close()  # sends QUIT: the engine process ends by itself
    assert proc.wait(timeout_s=20) == 0

    with Store.open(store_root) as store:
        [rec] = store.list_episodes()
        ep = store.read_episode(rec.episode_id)
    assert rec.outcome == "success" and rec.operator == "keyboard"
    kinds = [e.kind for e in ep.events]
    assert kinds == [
        EventKind.START,
        EventKind.TAKEOVER,
        EventKind.HANDBACK,
        EventKind.RAMP_END,
        EventKind.ESTOP,
        EventKind.RESET,
        EventKind.END,
    ]
    start, stop, ramp_end, estop = (ep.events[i].step for i in (1, 2, 3, 4))
    assert set(ep.control_source[start:stop]) == {int(ControlSource.HUMAN)}
    assert set(ep.control_source[stop:ramp_end]) == {int(ControlSource.RAMP)}  # the policy blends back in
    policy = set(ep.control_source[:start]) | set(ep.control_source[ramp_end:estop])
    assert policy == {int(ControlSource.POLICY)}
    assert set(ep.control_source[estop:]) == {int(ControlSource.HOLD)}
    assert np.all(ep.action[estop:, :3] == 0)  # nothing moved the arm after the e-stop
    # While R was held the executed action moved up (+z) and the policy's proposal was still recorded.
    human = ep.action[start:stop]
    assert (human[:, 2] > 0.5).any()
    assert np.all(np.isfinite(ep.proposed_action))
