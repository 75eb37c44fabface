"""Child processes: the ready report, errors before it, and death with the parent (SIGKILL)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from takeover.app.net.children import (
    EXIT_PARENT_GONE,
    ChildStartError,
    ParentLink,
    ipc_endpoint,
    start_child,
)

from .helpers import alive, wait_until_gone

# A child: adopt the link, then act out argv[1]; argv[2] is a file to write what happened to.
CHILD = """
import sys, time
from takeover.app.net.children import ParentLink
mode, log = sys.argv[1], sys.argv[2]
link = ParentLink.adopt(int(sys.argv[-1]), grace_s=0.5)
if mode == "exit":
    sys.exit(2)
if mode == "refuse":
    link.report_error("no checkpoint at /x.safetensors")
    sys.exit(2)
if mode == "garbage":
    link._sock.sendall(b"hello\\n")
if mode == "graceful":
    link.on_gone(lambda: open(log, "w").write("stopping"))  # ... and never does
if mode in ("report", "graceful"):
    link.report(endpoint="tcp://127.0.0.1:1234")
time.sleep(60)
"""

# A parent that starts a reporting child, prints the child's pid and waits to be killed.
PARENT = """
import sys, time
from takeover.app.net.children import start_child
child = start_child([sys.executable, "-c", sys.argv[1], "report", "-"], "child")
child.wait_ready(("endpoint",), 30)
print(child.pid, flush=True)
time.sleep(60)
"""


def child(mode: str, tmp_path: Path) -> list[str]:
    return [sys.executable, "-c", CHILD, mode, str(tmp_path / "log")]


def test_report_reaches_the_parent_and_closing_the_link_ends_the_child(tmp_path: Path) -> None:
    started = start_child(child("report", tmp_path), "test child")
    assert started.wait_ready(("endpoint",), timeout_s=30) == {"endpoint": "tcp://127.0.0.1:1234"}
    began = time.monotonic()
    assert started.stop(timeout_s=5) == EXIT_PARENT_GONE  # no graceful stop named: at once
    assert time.monotonic() - began < 1.0


def test_a_named_stop_runs_and_the_grace_period_bounds_it(tmp_path: Path) -> None:
    started = start_child(child("graceful", tmp_path), "test child")
    started.wait_ready(("endpoint",), timeout_s=30)
    began = time.monotonic()
    assert started.stop(timeout_s=5) == EXIT_PARENT_GONE
    assert 0.5 <= time.monotonic() - began < 2.0  # its stop hung: ended after the 0.5 s grace
    assert (tmp_path / "log").read_text() == "stopping"


def test_a_child_that_exits_before_reporting_is_an_error(tmp_path: Path) -> None:
    started = start_child(child("exit", tmp_path), "test child")
    with pytest.raises(ChildStartError, match=r"^the test child exited with code 2 before it was ready"):
        started.wait_ready(("endpoint",), timeout_s=30)


def test_a_child_that_cannot_start_says_why_through_its_parent(tmp_path: Path) -> None:
    started = start_child(child("refuse", tmp_path), "test child")
    with pytest.raises(ChildStartError) as caught:
        started.wait_ready(("endpoint",), timeout_s=30)
    assert str(caught.value) == "the test child could not start: no checkpoint at /x.safetensors"


def test_a_silent_child_times_out_and_is_stopped(tmp_path: Path) -> None:
    started = start_child(child("silent", tmp_path), "test child")
    with pytest.raises(ChildStartError, match=r"^the test child did not report ready within 0.5 s$"):
        started.wait_ready(("endpoint",), timeout_s=0.5)
    assert started.poll() is not None


def test_a_malformed_report_is_an_error(tmp_path: Path) -> None:
    started = start_child(child("garbage", tmp_path), "test child")
    with pytest.raises(ChildStartError, match="malformed ready report"):
        started.wait_ready(("endpoint",), timeout_s=30)
    assert started.poll() is not None


def test_sigkill_of_the_parent_ends_the_child() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        assert alive(pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        assert wait_until_gone([pid], timeout_s=2.0) < 2.0
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


def test_adopt_refuses_what_is_not_a_link(tmp_path: Path) -> None:
    with (tmp_path / "file").open("w") as f, pytest.raises(ValueError, match="not an open socket"):
        ParentLink.adopt(f.fileno())
    with pytest.raises(ValueError, match="not an open socket"):
        ParentLink.adopt(-1)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp, pytest.raises(ValueError, match="Unix"):
        ParentLink.adopt(tcp.fileno())


def test_ipc_endpoint_refuses_a_path_too_long_for_a_unix_socket(tmp_path: Path) -> None:
    assert ipc_endpoint(Path("/tmp/x"), "status") == "ipc:///tmp/x/status"
    with pytest.raises(ValueError, match="set TMPDIR to a shorter folder"):
        ipc_endpoint(Path("/tmp") / ("d" * 100), "status")
