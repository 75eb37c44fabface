"""Temporary files: a crash leftover is found and removed; a file a live writer holds never is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from takeover.recorder.recovery import recover_all
from takeover.storage.store import Store
from takeover.storage.tempfiles import is_stale, locked_temp, remove_stale

# A writer in another process that creates a locked temporary file in the store's tmp/ and then
# hangs, as a finalize does while it writes the episode file.
_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from takeover.storage.tempfiles import locked_temp
    with locked_temp(Path(sys.argv[1]), prefix=".ep-", suffix=".h5") as (fd, path):
        print(path, flush=True)
        time.sleep(60)
    """
)


def _start_writer(directory: Path) -> tuple[subprocess.Popen[str], Path]:
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(directory)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    return child, Path(child.stdout.readline().strip())


def test_a_live_writers_file_is_left_alone_and_removed_once_the_writer_is_killed(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with Store.create(root) as store:
        (root / "tmp").mkdir()
        child, path = _start_writer(root / "tmp")
        try:
            assert path.is_file()
            assert not is_stale(path)
            assert store.check().temp_files == []
            assert store.repair() == [] and path.is_file()
            assert recover_all(store) == [] and path.is_file()
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            assert child.stdout is not None
            child.stdout.close()
        # The kill dropped the lock and left the file: a crash leftover now.
        assert path.is_file() and is_stale(path)
        assert store.check().lines() == [f"temporary file: {path}"]
        recover_all(store)
        assert not path.exists()
        assert store.check().healthy


def test_locked_temp_removes_its_file_unless_it_was_renamed(tmp_path: Path) -> None:
    with locked_temp(tmp_path, prefix=".a-") as (fd, path):
        os.write(fd, b"partial")
        assert not is_stale(path)
    assert not path.exists()
    with locked_temp(tmp_path, prefix=".b-") as (fd, path):
        os.write(fd, b"whole")
        os.replace(path, tmp_path / "final")
    assert (tmp_path / "final").read_bytes() == b"whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]


def test_remove_stale_deletes_only_an_unheld_file(tmp_path: Path) -> None:
    leftover = tmp_path / ".x.tmp"
    leftover.write_bytes(b"x")
    assert remove_stale(leftover) and not leftover.exists()
    assert not remove_stale(leftover)  # already gone
    with locked_temp(tmp_path, prefix=".held-") as (_, held):
        assert not remove_stale(held) and held.is_file()
