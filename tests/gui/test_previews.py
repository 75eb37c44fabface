"""Free-running cameras in the console: the engine's status carries small live frames, the window
shows one view per camera and marks a camera that stopped as NO SIGNAL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from takeover.app.engine.protocol import Status
from takeover.app.net import wire

from .conftest import sample_frame
from .test_main_window import show

pytestmark = pytest.mark.gui


def test_status_carries_previews_and_refuses_malformed_ones() -> None:
    frame = sample_frame(60, 80)
    status = Status(0.0, "IDLE", False, "", 0, 0, False, previews={"wrist": frame})
    back = Status.decode(status.encode())
    assert list(back.previews) == ["wrist"]
    np.testing.assert_array_equal(back.previews["wrist"], frame)
    assert Status.decode(Status(0.0, "IDLE", False, "", 0, 0, False).encode()).previews == {}
    body = wire.decode(status.encode())
    body["previews"] = {"wrist": "not an image"}
    with pytest.raises(wire.WireError, match="previews"):
        Status.decode(wire.encode(body))


def test_console_shows_a_view_per_camera_and_marks_a_silent_one(
    qtbot: Any, engine: Any, console: Any, screenshot: Any, tmp_path: Path
) -> None:
    wrist, top = sample_frame(120, 160), sample_frame(90, 120)
    running = {"mode": "AUTONOMOUS", "episode_active": True, "image": sample_frame()}
    show(qtbot, engine, console, step=3, previews={"wrist": wrist, "top": top}, **running)
    qtbot.waitUntil(lambda: set(console.previews) == {"wrist", "top"}, timeout=3000)
    qtbot.waitUntil(lambda: console.previews["wrist"].frame_size is not None, timeout=3000)
    assert not console.previews["wrist"].stale and not console.previews["top"].stale
    assert console.previews["wrist"].isVisible() and console.previews["top"].isVisible()
    screenshot(console, Path(os.environ.get("TAKEOVER_PREVIEW_SHOT", tmp_path / "console-previews.png")))
    # The top camera stops delivering: its view says so instead of freezing on the last frame.
    show(qtbot, engine, console, step=4, previews={"wrist": wrist}, **running)
    qtbot.waitUntil(lambda: console.previews["top"].stale, timeout=3000)
    assert not console.previews["wrist"].stale
    qtbot.wait(100)
    assert set(console.previews) == {"wrist", "top"}  # views stay where the operator saw them
