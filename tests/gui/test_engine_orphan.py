"""An engine whose console dies stops and exits by itself: nobody is left driving the robot."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from takeover.app.net.ports import free_port

pytestmark = [pytest.mark.sim, pytest.mark.slow]


def test_engine_exits_when_its_console_dies(tmp_path: Path) -> None:
    # A stand-in console: a process that starts the engine as its child, reports the pid, and dies.
    launcher = (
        "import os, subprocess, sys\n"
        "cmd = [sys.executable, '-m', 'takeover.app.cli', 'engine', '--status-endpoint', sys.argv[1],\n"
        "       '--command-endpoint', sys.argv[2], '--store', sys.argv[3],\n"
        "       '--parent-pid', str(os.getpid())]\n"
        "p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=open(sys.argv[4], 'w'))\n"
        "print(p.pid, flush=True)\n"
        "os._exit(0)\n"
    )
    status, command = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            launcher,
            status,
            command,
            str(tmp_path / "store"),
            str(tmp_path / "engine.log"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "MUJOCO_GL": "egl"},
    )
    engine_pid = int(out.stdout.strip())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(engine_pid, 0)
        except ProcessLookupError:
            log = (tmp_path / "engine.log").read_text()
            assert "went away" in log, log  # it stopped because the console died, not by failing
            return
        time.sleep(0.2)
    os.kill(engine_pid, 9)
    pytest.fail("the orphaned engine kept running")
