"""End to end: the scripted operator rescues attempts through `takeover run --headless` (the real
simulator, policy server process, loop and recorder) and hands back only once the puck is held."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from takeover.storage.schema import EventKind
from takeover.storage.store import Store

pytestmark = [pytest.mark.sim]

SEED = 1024
"""With the shipped policy the operator takes over on this seed, starts over once, and hands back
after the lift (found with bench/scripted_operator.py)."""
LIFTED = 0.02
"""Meta-World counts the puck as held once it is this far above where it started (m)."""


def test_the_operator_hands_back_once_the_puck_is_held_and_the_attempt_succeeds(tmp_path: Path) -> None:
    env = {**os.environ, "TAKEOVER_STORE": str(tmp_path), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    args = ["run", "--headless", "--operator", "scripted", "--no-pacing", "--episodes", "1"]
    proc = subprocess.run(
        [sys.executable, "-m", "takeover.app.cli", *args, "--seed", str(SEED)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with Store.open(tmp_path) as store:
        (rec,) = store.list_episodes()
        ep = store.read_episode(rec.episode_id)
    kinds = [e.kind for e in ep.events]
    assert ep.meta.success and EventKind.TAKEOVER in kinds and EventKind.HANDBACK in kinds
    handback = next(e for e in ep.events if e.kind is EventKind.HANDBACK)
    state = ep.state
    start_z, z = float(state[0, 6]), float(state[handback.step, 6])
    assert z > start_z + LIFTED, f"handed back with the puck at {z:.3f} m (started at {start_z:.3f} m)"
