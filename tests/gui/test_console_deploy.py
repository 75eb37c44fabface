"""`takeover policy deploy` to the engine a console holds, with every piece a real process.

The engine runs as `takeover run` starts it (a child process: simulator, its own policy server,
recorder, store); the console window is the real one; `takeover policy deploy` is run as an
operator runs it, from another terminal, and finds the engine through this user's runtime folder
(a private one here). The deployed checkpoint carries a value model, so the next attempt also
shows the value estimate live, and the operator sets the value alert from the console.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PyQt6.QtCore import Qt

from takeover.app.gui.console.value_strip import ALERT_BORDER
from takeover.app.net.children import ipc_endpoint, private_ipc_dir, start_child
from takeover.app.policy.checkpoint import save_checkpoint
from takeover.app.policy.model import PolicyConfig
from takeover.app.policy.protocol import VALUE_EXTRA
from takeover.app.policy.testing import random_model
from takeover.app.policy.value import ValueConfig, ValueMLP
from takeover.storage.store import Store

from .conftest import open_console, save_console_screenshot

pytestmark = [pytest.mark.gui, pytest.mark.sim, pytest.mark.slow]


def deploy_cli(checkpoint: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "takeover.app.cli", "policy", "deploy", str(checkpoint)],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


@pytest.fixture
def engine_here(tmp_path: Path) -> Any:
    """The engine child on private ipc:// sockets, registered in a private runtime folder."""
    store = tmp_path / "store"
    store.mkdir()
    config = tmp_path / "no-cameras.toml"
    config.write_text("[station]\ncameras = []\n")
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    with private_ipc_dir() as folder:
        cmd = [sys.executable, "-m", "takeover.app.cli", "engine", "--config", str(config)]
        cmd += ["--status-endpoint", ipc_endpoint(folder, "status")]
        cmd += ["--command-endpoint", ipc_endpoint(folder, "command")]
        cmd += ["--store", str(store), "--max-steps", "400"]
        engine = start_child(cmd, "engine", env=env)
        try:
            bound = engine.wait_ready(("status", "command"), timeout_s=60)
            yield bound["status"], bound["command"], store, engine, env
        finally:
            engine.stop(timeout_s=10)


def test_deploy_reaches_the_consoles_engine_between_attempts(
    qtbot: Any, engine_here: Any, tmp_path: Path
) -> None:
    status_ep, command_ep, store_root, proc, env = engine_here
    torch.manual_seed(1)
    checkpoint = tmp_path / "recap-round-1.safetensors"
    new_id = save_checkpoint(
        random_model(seed=5, config=PolicyConfig(hidden=(32,), horizon=6)),
        checkpoint,
        {"method": "recap", "note": "random weights"},
        value=ValueMLP(ValueConfig(hidden=(16,), bins=11)),
    )
    window, shown = open_console(qtbot, status_ep, command_ep)

    shown(lambda s: s.readiness == "ready", timeout=90000)
    shipped_id = window.status.policy_id
    assert shipped_id and shipped_id != new_id
    qtbot.mouseClick(window.start_button, Qt.MouseButton.LeftButton)
    shown(lambda s: s.episode_active and s.step > 3)
    assert window.status.value is None  # the shipped policy has no value model

    during = deploy_cli(checkpoint, env)  # during an attempt: refused, nothing changes
    assert during.returncode == 2
    assert "an attempt is running: deploy between attempts" in during.stderr
    assert window.status.policy_id == shipped_id
    qtbot.mouseClick(window.failure_button, Qt.MouseButton.LeftButton)
    shown(lambda s: not s.episode_active and s.episodes_done == 1)

    between = deploy_cli(checkpoint, env)
    assert between.returncode == 0, between.stderr
    assert f"deployed {checkpoint}: the next attempt runs it" in between.stdout
    shown(lambda s: s.policy_id == new_id and f"deployed policy {new_id} (was {shipped_id})" in s.message)
    qtbot.waitUntil(lambda: f"deployed policy {new_id}" in window.message_label.text())

    qtbot.mouseClick(window.start_button, Qt.MouseButton.LeftButton)
    shown(lambda s: s.episode_active and s.value is not None and s.step > 5)
    estimate = window.status.value
    assert -1.0 <= estimate <= 0.0 and window.value_value.text() != "—"
    qtbot.waitUntil(lambda: len(window.value_strip.samples) >= 2)
    window.set_value_alert(0.5)  # above any estimate on this scale: the alert comes at once
    shown(lambda s: s.value_alert == 0.5)
    qtbot.waitUntil(lambda: "below 0.50: the policy may be failing" in window.value_alert_label.text())
    qtbot.waitUntil(lambda: ALERT_BORDER in window.mode_label.styleSheet(), timeout=3000)
    assert window.alert_button.text() == "below 0.50"
    save_console_screenshot(window, tmp_path / "deployed-value-alert.png")
    window.set_value_alert(None)
    shown(lambda s: s.value_alert is None)
    qtbot.waitUntil(lambda: window.value_alert_label.text() == "")
    qtbot.wait(600)  # the verdict buttons take clicks 0.5 s after they are enabled (no double clicks)
    qtbot.mouseClick(window.success_button, Qt.MouseButton.LeftButton)
    shown(lambda s: not s.episode_active and s.episodes_done == 2)

    window.close()
    assert proc.wait(timeout_s=20) == 0
    with Store.open(store_root) as store:
        records = sorted(store.list_episodes(), key=lambda r: r.started_at)
        assert [(r.policy_id, r.outcome) for r in records] == [(shipped_id, "failure"), (new_id, "success")]
        second = store.read_episode(records[1].episode_id)
    values = np.asarray(second.streams[f"policy.{VALUE_EXTRA}"].values).reshape(-1)
    assert len(values) >= 2 and float(values.min()) >= -1.0 and float(values.max()) <= 0.0
