"""A policy server child process on loopback, for runs that were given no policy URL.

The child binds port 0, reports the port it got and dies with this process
(:mod:`takeover.app.net.children`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from takeover.app.net.children import Child, ChildStartError, start_child


class PolicyLaunchError(RuntimeError):
    """The local policy server could not be started; the message says why."""


@dataclass
class LocalPolicyServer:
    """A policy server child process on loopback, for runs without a policy URL."""

    checkpoint: str
    timeout_s: float = 60.0
    """How long the child may take to load its checkpoint and report its endpoint."""
    url: str = ""
    _child: Child | None = field(default=None, repr=False)

    def start(self) -> str:
        """Start the server and wait until it serves; return its URL."""
        from takeover.app.policy import default_checkpoint_path

        ckpt = self.checkpoint or str(default_checkpoint_path())
        if not Path(ckpt).exists():
            raise PolicyLaunchError(f"policy checkpoint {ckpt} does not exist")
        cmd = [sys.executable, "-m", "takeover.app.cli", "policy", "serve"]
        cmd += ["--checkpoint", ckpt, "--endpoint", "tcp://127.0.0.1:0"]
        self._child = start_child(cmd, "local policy server")
        try:
            self.url = self._child.wait_ready(("endpoint",), self.timeout_s)["endpoint"]
        except ChildStartError as exc:
            self._child = None
            raise PolicyLaunchError(str(exc)) from None
        return self.url

    def stop(self) -> None:
        if self._child is not None:
            self._child.stop()
            self._child = None
