"""Save screenshots of the operator console's main states into docs/console-*.png.

The real console window (offscreen, 1366×768) is connected over real sockets to the fake engine
of the GUI tests (tests/gui/fake_engine.py), which publishes one status per state:

    idle, autonomous, human, hold, estop, labelling, failed-start, settings, help

Run from the repository root: ``QT_QPA_PLATFORM=offscreen python scripts/screenshots.py``
(``--out DIR`` to write elsewhere, ``--only NAME`` for one state).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
from PyQt6.QtCore import QCoreApplication
from PyQt6.QtWidgets import QApplication, QWidget

from takeover.app.engine.protocol import AttemptClock, HealthItem, SessionFigures, StartProblem, Status
from takeover.app.gui.console.engine_link import EngineLink
from takeover.app.gui.console.settings import SettingsDialog, SettingsTarget
from takeover.app.gui.console.window import MainWindow
from takeover.app.runtime.config import AppConfig

ROOT = Path(__file__).resolve().parents[1]
SIZE = (1366, 768)


def _fake_engine_module() -> Any:
    path = ROOT / "tests" / "gui" / "fake_engine.py"
    spec = importlib.util.spec_from_file_location("takeover_fake_engine", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FAKE = _fake_engine_module()


def wrist_frame(height: int = 168, width: int = 224) -> np.ndarray:
    """A second camera: the gripper seen from above, the cube below it."""
    frame = np.full((height, width, 3), (150, 115, 80), np.uint8)
    frame[height // 3 : height // 3 + 40, width // 2 - 20 : width // 2 + 20] = (200, 40, 40)
    frame[:18, :] = (140, 140, 150)
    frame[18:60, width // 2 - 40 : width // 2 - 30] = (120, 120, 130)
    frame[18:60, width // 2 + 30 : width // 2 + 40] = (120, 120, 130)
    return frame


HEALTHY = (
    HealthItem("SpaceMouse", "ok", "connected"),
    HealthItem("policy server", "ok", "12 ms, healthy"),
    HealthItem("station", "ok", "simulated pick-place-v3"),
    HealthItem("camera front", "ok", "20 fps"),
    HealthItem("camera wrist", "ok", "15 fps"),
    HealthItem("recorder", "ok", "0 dropped · 182 GB free"),
)
SESSION = SessionFigures(
    operator="Ana",
    task="pick-place-v3",
    attempts=7,
    successes=4,
    near_successes=1,
    failures=2,
    interventions=5,
    first_intervention_s=(4.2, 6.8, 3.1),
)


def base(**fields: Any) -> Status:
    status = FAKE.make_status(
        camera="front",
        image=FAKE.sample_frame(168, 224),
        previews={"wrist": wrist_frame()},
        instruction="Pick up the red cube and place it on the green target.",
        station="pick-place-v3 (simulated)",
        policy_id="mlp-3f2a",
        store="~/takeover/store",
        readiness="ready",
        health=HEALTHY,
        session=SESSION,
        timing={"period_ms": 50.0, "loop_ms": 4.1, "policy_ms": 11.8, "overruns": 0.0},
        episodes_done=7,
        episode_id="5c1e0a9d7b2f",
    )
    return replace(status, **fields)


def running(mode: str, elapsed: float, held: float = 0.0, **fields: Any) -> Status:
    return base(
        mode=mode,
        episode_active=True,
        step=int(elapsed * 20),
        clock=AttemptClock(elapsed_s=elapsed, limit_s=25.0, held_s=held),
        gripper_closed=elapsed > 6,
        **fields,
    )


STATES: dict[str, Status] = {
    "idle": base(
        mode="IDLE", episode_active=False, step=0, message="ready: press Start (Ctrl+N) for an attempt"
    ),
    "autonomous": running("AUTONOMOUS", 5.2),
    "human": running("HUMAN", 9.7, message="operator took over at step 131"),
    "hold": running("HOLD", 11.0, held=6.4, message="held: Resume or take over to continue"),
    "estop": running("ESTOP", 11.5, held=2.0, message="E-STOP: the robot is held until Reset"),
    "labelling": running("AUTONOMOUS", 18.3, success=True),
    "failed-start": base(
        mode="IDLE",
        episode_active=False,
        step=0,
        readiness="failed",
        problem=StartProblem(
            "The policy server at tcp://127.0.0.1:5555 did not answer within 10 s. Is it running? "
            "Start it with `takeover serve-policy`, or pick another endpoint in the settings.",
            ("retry", "keyboard", "settings"),
        ),
        image=None,
        previews={},
        health=(
            HealthItem("policy server", "error", "not answering (tcp://127.0.0.1:5555)"),
            HealthItem("SpaceMouse", "error", "unplugged"),
            *HEALTHY[2:],
        ),
    ),
    "settings": base(mode="IDLE", episode_active=False, step=0),
    "help": running("AUTONOMOUS", 3.0),
}


def ee_track(t: float) -> np.ndarray:
    x, y, z = 0.1 * math.sin(t), 0.6 + 0.05 * math.cos(0.7 * t), 0.2 + 0.03 * math.sin(2 * t)
    return np.array([x, y, z], np.float32)


def pump(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QCoreApplication.processEvents()
        time.sleep(0.005)


def wait_for(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > end:
            raise SystemExit("the console did not show the state in time")
        pump(0.02)


def shoot(name: str, status: Status, out: Path) -> Path:
    engine = FAKE.FakeEngine()
    engine.start()
    link = EngineLink(engine.status_endpoint, engine.command_endpoint)
    window = MainWindow(link, title="Takeover — pick-place-v3 · policy mlp-3f2a · store ~/takeover/store")
    window.close_answer_timeout_s = 0.05
    window.resize(*SIZE)
    try:
        link.start()
        window.show()
        engine.status = replace(status, ee=ee_track(10.0))
        wait_for(lambda: window.status is not None and window.status.ee is not None)
        if status.episode_active:  # the last ten seconds of the robot's motion, as the plot keeps them
            now = window.status.t if window.status is not None else 0.0
            window.state_plot.clear()
            for i in range(101):
                window.state_plot.add(now - 10.0 + i * 0.1, ee_track(i * 0.1))
        if name == "labelling":
            window.note_field.setText("grasped on the second try; cube slipped once")
            pump(0.6)
            window.success_button.setDown(True)
        if name == "help":
            window.help_overlay.show_overlay()
        if name == "idle":
            window.show_refusal("no attempt is running: key T not sent")
        pump(0.5)
        path = out / f"console-{name}.png"
        if name == "settings":
            target = SettingsTarget(AppConfig(), Path("/home/operator/.config/takeover/config.toml"))
            dialog = SettingsDialog(target, window)
            dialog.show()
            pump(0.5)
            image = window.grab()
            piece = dialog.grab()
            from PyQt6.QtGui import QPainter

            painter = QPainter(image)
            painter.fillRect(image.rect(), _dim())
            x, y = (image.width() - piece.width()) // 2, (image.height() - piece.height()) // 2
            painter.drawPixmap(x, y, piece)
            painter.end()
            dialog.close()
        else:
            image = window.grab()
        if not image.save(str(path)):
            raise SystemExit(f"could not write {path}")
        return path
    finally:
        window.close()
        link.stop()
        engine.close()


def _dim() -> Any:
    from PyQt6.QtGui import QColor

    return QColor(0, 0, 0, 110)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--only", choices=sorted(STATES), action="append")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only or list(STATES):
        print(shoot(name, STATES[name], args.out))
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, QWidget):
            widget.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
