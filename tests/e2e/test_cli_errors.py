"""Every bad input and store fault gets one line ``error: ...`` and exit status 2, never a traceback.

Table-driven: each row runs the real ``takeover`` command (in process through ``main``; as another
process that file permissions bind where they are the point) and checks the exit status, that stderr is
exactly one ``error:`` line without a traceback, and that the line holds the row's own words: the
option or file at fault and what to do. A blanket ``except Exception`` printing its message could
not pass: the words are ours, not a library's. Disk faults are real (a small tmpfs, full or
read-only; root, as in CI).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from takeover.app.cli import main
from takeover.storage.store import Store
from takeover.storage.testing import make_episode
from takeover.storage.testing_fs import fill, read_only_tree, remount, run_bound_by_permissions, tmpfs

Places = dict[str, str]


def _store(root: Path) -> Path:
    with Store.create(root) as s:
        s.add_episode(make_episode("ep-a", 7, seed=1))
        s.commit("v1")
    return root


def _toml(text: str) -> Callable[[Path, ExitStack], Places]:
    def setup(tmp: Path, stack: ExitStack) -> Places:
        (tmp / "c.toml").write_text(text)
        return {"cfg": str(tmp / "c.toml")}

    return setup


def _plain(tmp: Path, stack: ExitStack) -> Places:
    (tmp / "a-file").write_text("not a folder")
    return {"file": str(tmp / "a-file")}


def _damaged(tmp: Path, stack: ExitStack) -> Places:
    root = _store(tmp / "store")
    (root / "catalog.db").write_bytes(b"SQLite format 3\0" + b"\x17" * 4096)
    return {"store": str(root)}


def _missing(tmp: Path, stack: ExitStack) -> Places:
    root = _store(tmp / "store")
    (root / "catalog.db").unlink()
    return {"store": str(root)}


def _read_only_fs(tmp: Path, stack: ExitStack) -> Places:
    mnt = stack.enter_context(tmpfs(tmp / "mnt", size_kib=2048))
    root = _store(mnt / "store")
    remount(mnt, read_only=True)
    return {"store": str(root), "new": str(mnt / "new")}


def _full_disk(tmp: Path, stack: ExitStack) -> Places:
    mnt = stack.enter_context(tmpfs(tmp / "mnt", size_kib=2048))
    root = _store(mnt / "store")
    fill(mnt)
    return {"store": str(root), "new": str(mnt / "new")}


def _no_write_permission(tmp: Path, stack: ExitStack) -> Places:
    root = _store(tmp / "store")
    read_only_tree(root)
    return {"store": str(root)}


@dataclass(frozen=True)
class Row:
    id: str
    argv: tuple[str, ...]
    words: tuple[str, ...]
    """Each must be in the error line: the option or file at fault, and what to do."""
    setup: Callable[[Path, ExitStack], Places] = _plain
    bound_by_permissions: bool = False
    """Run in a subprocess that file permissions bind (root's override capabilities dropped)."""


HEADLESS = ("run", "--headless", "--no-policy", "--store", "{tmp}")  # a store named must exist
ROWS = [
    # options of `run`
    Row("rate-0", (*HEADLESS, "--rate", "0"), ("--rate", "control rate must be at least 1", "got 0")),
    Row("rate-nan", (*HEADLESS, "--rate", "nan"), ("--rate", "at most 1000 Hz", "got nan")),
    Row("max-steps-neg", (*HEADLESS, "--max-steps", "-1"), ("--max-steps", "must be at least 0", "got -1")),
    Row("seed-negative", (*HEADLESS, "--seed", "-1"), ("argument --seed", "whole number in 0..2147483647")),
    Row(
        "seed-reserved",
        (*HEADLESS, "--seed", "5000"),
        ("--seed", "reserved for evaluation", "choose a seed outside it", "--evaluation"),
    ),
    Row(
        "seeds-run-into-reserved",
        (*HEADLESS, "--seed", "4990", "--episodes", "20"),
        ("--seed/--episodes", "4990..5009", "seed 5000 is in the range 5000..9999"),
    ),
    Row(
        "evaluation-seed-outside",
        (*HEADLESS, "--evaluation", "--seed", "12"),
        ("--seed", "evaluation seeds come from the reserved range", "seed 12 is outside it"),
    ),
    Row(
        "policy-url-port",
        (*HEADLESS, "--policy-url", "tcp://127.0.0.1:99999"),
        ("argument --policy-url", "port 99999 is out of range", "use 1..65535"),
    ),
    Row(
        "config-folder",
        (*HEADLESS, "--config", "{tmp}"),
        ("configuration file {tmp} is a folder", "TOML file"),
    ),
    # configuration files
    Row(
        "station-not-there",
        (*HEADLESS, "--config", "{cfg}"),
        ("no station answered", "tcp://127.0.0.1:9", "takeover station serve"),
        _toml('[station]\nkind = "remote"\nurl = "tcp://127.0.0.1:9"\ntimeout_s = 0.3\n'),
    ),
    Row(
        "rate-inf",
        (*HEADLESS, "--config", "{cfg}"),
        ("{cfg}", "loop.rate_hz", "at most 1000 Hz", "got inf"),
        _toml("[loop]\nrate_hz = inf\n"),
    ),
    Row(
        "rate-tiny",
        (*HEADLESS, "--config", "{cfg}"),
        ("{cfg}", "loop.rate_hz", "at least 1", "got 1e-06"),
        _toml("[loop]\nrate_hz = 1e-6\n"),
    ),
    Row(
        "ee-delta-scale-inf",
        (*HEADLESS, "--config", "{cfg}"),
        ("{cfg}", "loop.safety.ee_delta_scale", "at most 1 m", "got inf"),
        _toml("[loop.safety]\nee_delta_scale = inf\n"),
    ),
    Row(
        "human-gain-nan",
        (*HEADLESS, "--config", "{cfg}"),
        ("{cfg}", "loop.human_gain", "above 0 and at most 10", "got nan"),
        _toml("[loop]\nhuman_gain = nan\n"),
    ),
    Row(
        "unknown-task",
        (*HEADLESS, "--config", "{cfg}"),
        ("station.task", "no task 'pick-plcae-v3'", "did you mean pick-place-v3"),
        _toml('[station]\ntask = "pick-plcae-v3"\n'),
    ),
    # endpoints of the servers
    Row(
        "station-endpoint-port",
        ("station", "serve", "--endpoint", "tcp://127.0.0.1:99999"),
        ("argument --endpoint", "port 99999 is out of range", "0 or * for any free port"),
    ),
    Row(
        "station-endpoint-empty",
        ("station", "serve", "--endpoint", ""),
        ("argument --endpoint", "the endpoint is empty", "give tcp://HOST:PORT or ipc://PATH"),
    ),
    Row(
        "policy-endpoint-port",
        ("policy", "serve", "--endpoint", "tcp://127.0.0.1:70000"),
        ("argument --endpoint", "port 70000 is out of range"),
    ),
    Row(
        "engine-endpoint-no-path",
        ("engine", "--status-endpoint", "ipc://", "--command-endpoint", "tcp://127.0.0.1:0"),
        ("argument --status-endpoint", "names no path"),
    ),
    Row(
        "keygen-dir-is-a-file",
        ("station", "keygen", "--dir", "{file}", "--name", "robot"),
        ("--dir {file} is a file", "give a folder"),
    ),
    # the store
    Row(
        "catalog-damaged",
        ("data", "list", "--store", "{store}"),
        ("{store}/catalog.db", "damaged", "restore it from a backup"),
        _damaged,
    ),
    Row(
        "catalog-missing",
        ("data", "tags", "--store", "{store}"),
        ("{store}/catalog.db", "is missing", "restore it from a backup"),
        _missing,
    ),
    Row(
        "read-only-fs-commit",
        ("data", "commit", "--tag", "v2", "--store", "{store}"),
        ("cannot commit version 'v2'", "{store}", "read-only file system", "can still be listed"),
        _read_only_fs,
    ),
    Row(
        "read-only-fs-init",
        ("data", "init", "--store", "{new}"),
        ("cannot create a dataset store at {new}", "read-only file system"),
        _read_only_fs,
    ),
    Row(
        "read-only-fs-record",
        ("run", "--headless", "--no-policy", "--store", "{store}"),
        ("cannot record attempts", "{store}", "can only be read"),
        _read_only_fs,
    ),
    Row(
        "full-disk-list",
        ("data", "list", "--store", "{store}"),
        ("{store}/catalog.db", "is full", "free some space"),
        _full_disk,
    ),
    Row(
        "full-disk-init",
        ("data", "init", "--store", "{new}"),
        ("cannot create a dataset store at {new}", "the disk is full", "free some space"),
        _full_disk,
    ),
    Row(
        "permissions-commit",
        ("data", "commit", "--tag", "v2", "--store", "{store}"),
        ("cannot commit version 'v2'", "{store}", "this user may not write there"),
        _no_write_permission,
        bound_by_permissions=True,
    ),
]


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as s:
        yield s


@pytest.mark.timeout(120)  # a row whose check regressed may start serving: fail, do not hang
@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input_gets_one_line_naming_the_culprit(
    row: Row,
    tmp_path: Path,
    stack: ExitStack,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TAKEOVER_STORE", str(tmp_path / "default-store"))
    places = {"tmp": str(tmp_path), **row.setup(tmp_path, stack)}
    argv = [a.format(**places) for a in row.argv]
    if row.bound_by_permissions:
        done = run_bound_by_permissions([sys.executable, "-m", "takeover.app.cli", *argv], timeout=60)
        code, out, err = done.returncode, done.stdout, done.stderr
    else:
        code = main(argv)
        out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert err.startswith("error: ") and err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err + out and out == "", (out, err)
    for word in row.words:
        assert word.format(**places) in err, (word, err)


def test_a_store_this_user_may_not_write_is_still_read(tmp_path: Path) -> None:
    """The other side of the permission row: reading needs no write access (WAL's -shm aside).
    (Pulling from a read-only store: tests/storage/test_store_faults.py.)"""
    root = _store(tmp_path / "store")
    read_only_tree(root)
    both = f"from takeover.app.cli import main; main(['data', 'list', '--store', {str(root)!r}]); "
    both += f"raise SystemExit(main(['data', 'show', 'v1', '--store', {str(root)!r}]))"
    done = run_bound_by_permissions([sys.executable, "-c", both], timeout=60)
    assert done.returncode == 0 and done.stdout.count("ep-a") == 2 and "v1" in done.stdout, done.stderr
    assert sorted(p.name for p in root.iterdir()) == ["blobs", "catalog.db", "store.json", "tmp"]
