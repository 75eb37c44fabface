"""SIGKILL of a headless run or of the console leaves no child process behind.

The processes are the real ones: `takeover run --headless` with its local policy server, and
`takeover run` (the console, offscreen) with its engine child and the engine's policy server.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from takeover.app.cli.run import ENGINE_GRACE_S
from takeover.app.cli.serving import SERVER_GRACE_S
from takeover.app.engine.protocol import Command, CommandName, Status
from takeover.app.net import wire
from takeover.storage.store import Store

from .helpers import children_of, command_line, wait_until_gone

pytestmark = [pytest.mark.sim, pytest.mark.slow]

GONE_WITHIN_S = ENGINE_GRACE_S + SERVER_GRACE_S
"""The bound by design: an engine ends by its grace period at the latest, its server by its own after."""


def wait_for(
    what: str, check: Callable[[], Any], proc: subprocess.Popen[bytes], timeout_s: float = 60
) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (found := check()):
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[3:5]} exited with code {proc.returncode} before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
    return found


def the_child(pid: int, marker: str) -> int | None:
    found = [c for c in children_of(pid) if marker in command_line(c)]
    return found[0] if found else None


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        (tmp_path / "store").mkdir(exist_ok=True)  # a store named on the command line must exist
        out = (tmp_path / "out.txt").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "takeover.app.cli", "run", "--store", str(tmp_path / "store"), *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MUJOCO_GL": "egl", **(env or {})},
        )
        out.close()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_sigkill_of_a_headless_run_ends_its_policy_server(run: Any, tmp_path: Path) -> None:
    proc = run("--headless", "--episodes", "50")
    banner = re.compile(rb"serving on tcp://127\.0\.0\.1:(\d+)")
    found = wait_for("the policy server", lambda: banner.search((tmp_path / "out.txt").read_bytes()), proc)
    server = the_child(proc.pid, "policy serve")
    assert server is not None, children_of(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    took = wait_until_gone([server], GONE_WITHIN_S)
    print(f"policy server gone {took:.2f} s after its headless parent was killed")
    assert took < SERVER_GRACE_S
    with socket.socket() as s:  # and its port is free again
        s.bind(("127.0.0.1", int(found.group(1))))


def test_sigkill_of_the_console_ends_engine_and_policy_server(run: Any, tmp_path: Path) -> None:
    sockets = Path(tempfile.mkdtemp(prefix="t", dir="/tmp"))  # TMPDIR: short enough for ipc paths
    try:
        console = run(env={"QT_QPA_PLATFORM": "offscreen", "TMPDIR": str(sockets)})
        engine = wait_for("the engine", lambda: the_child(console.pid, " engine "), console)
        [folder] = wait_for("the engine's sockets", lambda: list(sockets.glob("takeover-*")), console)
        assert folder.stat().st_mode & 0o777 == 0o700
        with zmq.Context() as ctx, ctx.socket(zmq.SUB) as watch:
            watch.setsockopt(zmq.SUBSCRIBE, b"")
            watch.connect(f"ipc://{folder}/status")
            seen: list[Status] = []
            ready = lambda: _status(watch, lambda s: s.message.startswith("ready") and bool(s.viewer), seen)  # noqa: E731
            wait_for("a ready engine", ready, console)
            server = the_child(engine, "policy serve")
            assert server is not None, children_of(engine)
            # The console holds the engine (one console drives it): start as that console.
            _command(
                ctx, f"ipc://{folder}/command", Command(CommandName.START_EPISODE, viewer=seen[-1].viewer)
            )
            running = lambda: _status(watch, lambda s: s.episode_active and s.step > 10)  # noqa: E731
            wait_for("a running attempt", running, console)
        os.kill(console.pid, signal.SIGKILL)
        took = wait_until_gone([engine, server], GONE_WITHIN_S)
        print(f"engine and policy server gone {took:.2f} s after the console was killed")
        assert not list(folder.iterdir())  # the engine's sockets went with it
    finally:
        for leftover in sockets.glob("*/*"):
            leftover.unlink()
        for leftover in sockets.glob("*"):
            leftover.rmdir()
        sockets.rmdir()
    with Store.open(tmp_path / "store") as store:  # the orphaned engine stopped and saved its attempt
        [episode] = store.list_episodes()
    assert episode.num_steps > 10 and not episode.recovered  # saved by the engine, not recovered later
    assert "went away" in (tmp_path / "out.txt").read_text()


def _status(sub: zmq.Socket[bytes], want: Callable[[Status], bool], seen: list[Status] | None = None) -> bool:
    while sub.poll(0):
        status = Status.decode(sub.recv())
        if want(status):
            if seen is not None:
                seen.append(status)
            return True
    return False


def _command(ctx: zmq.Context[Any], endpoint: str, command: Command) -> None:
    with ctx.socket(zmq.REQ) as req:
        req.setsockopt(zmq.LINGER, 0)
        req.setsockopt(zmq.RCVTIMEO, 5000)
        req.connect(endpoint)
        req.send(command.encode())
        assert wire.decode(req.recv())["ok"] is True
