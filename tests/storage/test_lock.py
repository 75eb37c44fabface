"""A lock file held by one process at a time, naming its holder; a dead holder's lock is taken."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from takeover.storage.lock import Holder, LockHeldError, ProcessLock, read_holder

HOLD_AND_WAIT = """
import sys, time
from pathlib import Path
from takeover.storage.lock import ProcessLock
ProcessLock(Path(sys.argv[1]), "`takeover run` (pid 7)").acquire("the store", "close it")
print("held", flush=True)
time.sleep(60)
"""


def test_a_second_holder_is_told_who_holds_it_and_takes_it_once_it_is_let_go(tmp_path: Path) -> None:
    path = tmp_path / "recording.lock"
    first = ProcessLock(path, "`takeover engine`").acquire("the store at S", "close that one")
    holder = read_holder(path)
    assert holder is not None and holder.pid == os.getpid() and holder.what == "`takeover engine`"
    with pytest.raises(LockHeldError) as refused:
        ProcessLock(path, "`takeover run`").acquire("the store at S", "close that one first")
    text = str(refused.value)
    assert text.startswith(f"the store at S is in use by `takeover engine`, pid {os.getpid()}, ")
    assert text.endswith("; close that one first") and "\n" not in text
    first.release()
    first.release()
    assert read_holder(path) is None
    with ProcessLock(path, "`takeover run`").acquire("the store at S", "x") as second:
        assert second.held


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "recording.lock"
    command = [sys.executable, "-c", HOLD_AND_WAIT, str(path)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
            with pytest.raises(LockHeldError, match=rf"in use by `takeover run` \(pid 7\), pid {proc.pid}, "):
                ProcessLock(path, "me").acquire("the store", "close it")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert read_holder(path) is not None  # the dead holder's words are still there ...
    began = time.monotonic()
    lock = ProcessLock(path, "me").acquire("the store", "close it")  # ... but its lock is not
    assert time.monotonic() - began < 1.0 and lock.held
    holder = read_holder(path)
    assert holder is not None and holder.pid == os.getpid()
    lock.release()


def test_a_lock_file_that_names_nobody_is_said_so() -> None:
    assert Holder.parse("") is None and Holder.parse("{}") is None and Holder.parse("[1]") is None
    assert Holder.parse('{"what": 1, "pid": 2, "user": "u", "host": "h", "since": 0}') is None
    assert Holder.parse('{"what": "w", "pid": true, "user": "u", "host": "h", "since": 0}') is None
    ok = Holder.parse('{"what": "w", "pid": 2, "user": "u", "host": "h", "since": 0}')
    assert ok is not None and ok.describe().startswith("w, pid 2, u@h, since ")
