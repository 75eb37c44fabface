"""Child processes that belong to the process that starts them, and say where they listen.

A parent starts a child with :func:`start_child`, which hands the child one end of a Unix socket
pair (``--parent-fd N`` on its command line) and keeps the other end. The link has two jobs:

- **Ready report.** A child that serves binds port 0 (or an ``ipc://`` path) and writes one line
  of JSON with the endpoints it got (``{"endpoint": "tcp://127.0.0.1:40123"}``), or why it cannot
  start (``{"error": "..."}``); :meth:`Child.wait_ready` reads it with a timeout and fails with a
  clear error if the child cannot start, exits first or stays silent. Nobody guesses a free port,
  so nothing can take it in between.
- **Parent death.** The child (:class:`ParentLink`) watches its end on a thread: end of file
  means the parent is gone (exited, crashed or SIGKILLed: the kernel closes its end in every
  case) and the child stops, gracefully if it said how (:meth:`ParentLink.on_gone`), at once
  otherwise, and by ``os._exit`` if a graceful stop takes longer than its grace period.

Why a watched socket rather than Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG)``): that
signal fires when the *thread* that spawned the child exits, not the process, so a policy server
started from a worker thread would die with the thread; it must be set between fork and exec
(``preexec_fn``, not safe in a process that runs threads, as the engine does when it starts its
policy server) or after exec, racing the parent's death; and it delivers a signal into code
that may hold locks, where the engine needs to save the running attempt first. The socket is
closed exactly when the parent process ends (the parent's end is not inherited by its other
children), the child decides how to stop, and the same socket carries the ready report.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

PARENT_FD_OPTION = "--parent-fd"
MAX_REPORT_BYTES = 4096
EXIT_PARENT_GONE = 3
"""Exit status of a child that was still running its grace period after its parent went."""
MAX_IPC_PATH = 100
"""Unix socket paths are limited to about 107 bytes; leave room for libzmq."""


class ChildStartError(RuntimeError):
    """A child process did not become ready; the message says what happened."""


class Child:
    """A started child process and the parent's end of its link. Use :func:`start_child`."""

    def __init__(self, what: str, process: subprocess.Popen[bytes], link: socket.socket) -> None:
        self.what = what
        self.process = process
        self._link: socket.socket | None = link

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def wait_ready(self, keys: Sequence[str], timeout_s: float) -> dict[str, str]:
        """Wait for the child's ready report: a map with exactly ``keys``, each an endpoint.

        Raises :class:`ChildStartError` (and stops the child) if it exits, closes its link,
        reports something else or stays silent for ``timeout_s`` seconds.
        """
        try:
            line = self._read_line(timeout_s)
            return _parse_report(line, keys, self.what)
        except ChildStartError:
            self.stop(timeout_s=2.0)
            raise

    def _read_line(self, timeout_s: float) -> bytes:
        if self._link is None:
            raise ChildStartError(f"the {self.what} was already stopped")
        deadline = time.monotonic() + timeout_s
        data = b""
        while b"\n" not in data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChildStartError(f"the {self.what} did not report ready within {timeout_s:g} s")
            self._link.settimeout(remaining)
            try:
                chunk = self._link.recv(MAX_REPORT_BYTES)
            except TimeoutError:
                continue
            if not chunk:
                raise ChildStartError(self._ended_early())
            data += chunk
            if len(data) > MAX_REPORT_BYTES:
                raise ChildStartError(f"the {self.what} sent an oversized ready report")
        return data.split(b"\n", 1)[0]

    def _ended_early(self) -> str:
        try:
            code = self.process.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            return f"the {self.what} (pid {self.pid}) closed its link before it was ready"
        return f"the {self.what} exited with code {code} before it was ready (its own error is above)"

    def wait(self, timeout_s: float) -> int | None:
        """Wait up to ``timeout_s`` for the child to exit by itself; its exit code, or None."""
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout_s: float = 5.0) -> int:
        """Close the link (the child stops as if its parent had gone), wait; then SIGTERM, SIGKILL."""
        if self._link is not None:
            self._link.close()
            self._link = None
        for escalate in (self.process.terminate, self.process.kill):
            code = self.wait(timeout_s)
            if code is not None:
                return code
            log.warning(
                "the %s (pid %d) did not stop within %g s: signalling it", self.what, self.pid, timeout_s
            )
            escalate()
        return self.process.wait()


def start_child(argv: Sequence[str], what: str, env: Mapping[str, str] | None = None) -> Child:
    """Start ``argv`` (a command that accepts ``--parent-fd``) as a child that dies with this process.

    stdin is closed; stdout and stderr are inherited (the child's errors reach the same terminal);
    ``env`` replaces the environment if given.
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        process = subprocess.Popen(
            [*argv, PARENT_FD_OPTION, str(theirs.fileno())],
            stdin=subprocess.DEVNULL,
            pass_fds=(theirs.fileno(),),
            env=env,
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()  # only the child holds it now: its exit closes the link
    return Child(what, process, ours)


def _parse_report(line: bytes, keys: Sequence[str], what: str) -> dict[str, str]:
    try:
        report = json.loads(line)
    except ValueError:
        report = None
    if isinstance(report, dict) and list(report) == ["error"] and isinstance(report["error"], str):
        raise ChildStartError(f"the {what} could not start: {report['error'][:MAX_REPORT_BYTES]}")
    if (
        not isinstance(report, dict)
        or sorted(report) != sorted(keys)
        or not all(isinstance(v, str) and 0 < len(v) <= 1024 for v in report.values())
    ):
        raise ChildStartError(f"the {what} sent a malformed ready report (expected endpoints {sorted(keys)})")
    return report


class ParentLink:
    """The child's end of the link to its parent: report endpoints, stop when the parent goes.

    Watching starts at :meth:`adopt`. Until :meth:`on_gone` names a graceful stop, a gone parent
    ends the process at once (there is nothing to save while starting up).
    """

    def __init__(self, sock: socket.socket, grace_s: float) -> None:
        self._sock = sock
        self.grace_s = grace_s
        self._stop: Callable[[], None] | None = None

    @classmethod
    def adopt(cls, fd: int, grace_s: float = 10.0) -> ParentLink:
        """Take the inherited socket ``fd`` and start watching it; ValueError if it is not one."""
        try:
            sock = socket.socket(fileno=fd)
        except (OSError, ValueError):  # ValueError: a negative number
            raise ValueError(
                f"{PARENT_FD_OPTION} {fd}: not an open socket (it is given by the takeover process "
                "that starts this one; leave it out when starting this command yourself)"
            ) from None
        if sock.family != socket.AF_UNIX:
            sock.detach()
            raise ValueError(f"{PARENT_FD_OPTION} {fd}: not a Unix socket from a takeover parent process")
        os.set_inheritable(fd, False)  # our own children must not keep our parent's link open
        link = cls(sock, grace_s)
        threading.Thread(target=link._watch, name="parent-link", daemon=True).start()
        return link

    def on_gone(self, stop: Callable[[], None]) -> None:
        """From now on a gone parent calls ``stop`` (on the watcher thread), then exits after the grace."""
        self._stop = stop

    def report(self, **endpoints: str) -> None:
        """Tell the parent where this process listens (one line of JSON)."""
        line = json.dumps(endpoints, separators=(",", ":")).encode() + b"\n"
        try:
            self._sock.sendall(line)
        except OSError:
            log.info("could not report endpoints: the parent is gone")

    def report_error(self, message: str) -> None:
        """Tell the parent why this process cannot start (it says so in one line, as its own error)."""
        self.report(error=message)

    def _watch(self) -> None:
        while True:
            try:
                data = self._sock.recv(64)
            except OSError:
                data = b""
            if not data:  # a parent never writes; end of file means it is gone
                break
        stop = self._stop
        if stop is None:
            os._exit(EXIT_PARENT_GONE)
        log.info("the process that started this one is gone: stopping")
        stop()
        time.sleep(self.grace_s)  # a daemon thread: a clean exit ends the process before this returns
        log.error("still running %g s after the parent went: exiting now", self.grace_s)
        os._exit(EXIT_PARENT_GONE)


@contextlib.contextmanager
def private_ipc_dir(prefix: str = "takeover-") -> Iterator[Path]:
    """A new folder only this user can enter (0700), for ``ipc://`` sockets; removed on exit."""
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        yield Path(folder)


def ipc_endpoint(folder: Path, name: str) -> str:
    """``ipc://`` endpoint for the socket ``name`` in ``folder``; ValueError if the path is too long."""
    path = str(folder / name)
    if len(path.encode()) > MAX_IPC_PATH:
        raise ValueError(
            f"the folder for local sockets, {folder}, has too long a path for a Unix socket; "
            "set TMPDIR to a shorter folder"
        )
    return f"ipc://{path}"
