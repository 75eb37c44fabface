"""A policy server child process on loopback, for runs that were given no policy URL."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from takeover.app.net.ports import free_port


class PolicyLaunchError(RuntimeError):
    """The local policy server could not be started; the message says why."""


@dataclass
class LocalPolicyServer:
    """A policy server child process on loopback, for runs without a policy URL."""

    checkpoint: str
    timeout_s: float = 60.0
    url: str = ""
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> str:
        from takeover.app.policy import default_checkpoint_path

        ckpt = self.checkpoint or str(default_checkpoint_path())
        if not Path(ckpt).exists():
            raise PolicyLaunchError(f"policy checkpoint {ckpt} does not exist")
        self.url = f"tcp://127.0.0.1:{free_port()}"
        cmd = [
            sys.executable,
            "-m",
            "takeover.app.cli",
            "policy",
            "serve",
            "--checkpoint",
            ckpt,
            "--endpoint",
            self.url,
        ]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        return self.url

    def check_alive(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            raise PolicyLaunchError(f"the local policy server exited with code {self._proc.returncode}")

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
