"""Free-running cameras configured beside the station's: recorded with their own capture times."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from takeover.app.runtime.config import ConfigError, load_config
from takeover.storage.store import Store

pytestmark = [pytest.mark.sim]


def takeover(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "takeover.app.cli", *args],
        env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")},
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def test_camera_tables_are_validated(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[camera]]\nname = "wrist"\nkind = "opencv"\n')
    with pytest.raises(ConfigError, match="needs a source"):
        load_config(cfg)
    cfg.write_text('[[camera]]\nname = "a"\nkind = "synthetic"\n[[camera]]\nname = "a"\nkind = "synthetic"\n')
    with pytest.raises(ConfigError, match="distinct"):
        load_config(cfg)
    cfg.write_text('[[camera]]\nname = "w"\nsource = "2"\nfps = 15\n')
    [cam] = load_config(cfg).camera
    assert (cam.kind, cam.source, cam.fps) == ("opencv", "2", 15.0)


def test_a_camera_that_cannot_be_opened_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[[camera]]\nname = "wrist"\nsource = "{tmp_path / "missing.avi"}"\n')
    (tmp_path / "s").mkdir()  # a store named on the command line must exist
    proc = takeover("run", "--headless", "--config", str(cfg), "--store", str(tmp_path / "s"))
    assert proc.returncode == 2
    assert "wrist" in proc.stderr and "Traceback" not in proc.stderr


def test_synthetic_camera_is_recorded_with_capture_times(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[camera]]\nname = "overhead"\nkind = "synthetic"\nwidth = 160\nheight = 120\nfps = 30\n')
    store = tmp_path / "store"
    store.mkdir()  # a store named on the command line must exist
    proc = takeover(
        "run",
        "--headless",
        "--episodes",
        "1",
        "--operator",
        "scripted",
        "--max-steps",
        "60",
        "--config",
        str(cfg),
        "--store",
        str(store),
    )
    assert proc.returncode == 0, proc.stderr
    with Store.open(store) as s:
        [rec] = s.list_episodes()
        ep = s.read_episode(rec.episode_id)
    assert set(ep.cameras) == {"corner", "gripperPOV", "overhead"}  # the station's two and the extra one
    cam = ep.cameras["overhead"]
    duration = ep.timestamps[-1] - ep.timestamps[0]
    # About 30 frames per second of the attempt, each stamped at capture, inside the attempt.
    assert abs(len(cam.frames) - 30 * duration) < 0.25 * 30 * duration + 3
    assert np.all(np.diff(cam.timestamps) > 0)
    assert cam.timestamps[0] >= ep.timestamps[0] - 0.1 and cam.timestamps[-1] <= ep.timestamps[-1] + 0.2
