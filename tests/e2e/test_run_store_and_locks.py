"""`takeover run` and the store: an explicit store that does not exist is not made (the default
one is, on first use); one run per store and per station, a second one says who holds it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from takeover.app.cli import main
from takeover.app.runtime.config import AppConfig, with_overrides
from takeover.app.runtime.locks import claim_station_and_store, station_lock_path, store_path_problem
from takeover.storage.lock import LockHeldError
from takeover.storage.store import MARKER, Store

pytestmark = pytest.mark.sim


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def test_an_explicit_store_that_does_not_exist_is_not_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo" / "store"
    for extra in (["--headless", "--no-policy"], []):  # headless, and the console before its engine
        assert main(["run", *extra, "--store", str(missing)]) == 2
        line = one_error_line(capsys.readouterr().err)
        assert f"no dataset store at {missing}: the folder does not exist" in line
        assert f"`takeover data init --store {missing}`" in line
    config = tmp_path / "c.toml"
    config.write_text(f'[store]\npath = "{missing}"\n')
    assert main(["run", "--headless", "--no-policy", "--config", str(config)]) == 2
    assert "no dataset store at" in capsys.readouterr().err
    assert not missing.exists() and not missing.parent.exists()
    assert main(["data", "init", "--store", str(missing)]) == 0  # the way the message gives
    assert store_path_problem(with_overrides(AppConfig(), store={"path": str(missing)})) == ""


@pytest.mark.slow
def test_the_default_store_is_made_on_first_use(tmp_path: Path) -> None:
    """README command 1 on a fresh machine: no store yet, none named."""
    store = tmp_path / "fresh" / "store"
    env = {**os.environ, "TAKEOVER_STORE": str(store), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    run = [sys.executable, "-m", "takeover.app.cli", "run", "--headless", "--no-policy"]
    run += ["--operator", "expert"]
    done = subprocess.run([*run, "--max-steps", "3"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (store / MARKER).is_file()
    with Store.open(store) as s:
        assert len(s.list_episodes()) == 1


def test_a_second_run_on_a_held_store_says_who_holds_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Store.create(tmp_path / "store").close()
    config = with_overrides(AppConfig(), store={"path": str(tmp_path / "store")})
    with claim_station_and_store(config, "`takeover run` (pid 4242)"):
        assert main(["run", "--headless", "--no-policy", "--store", str(tmp_path / "store")]) == 2
        line = one_error_line(capsys.readouterr().err)
        held = f"error: the dataset store at {tmp_path / 'store'} is in use by `takeover run` (pid 4242)"
        assert line.startswith(held)
        assert f"pid {os.getpid()}" in line and "one console per store" in line and "--store" in line
        with pytest.raises(LockHeldError):
            claim_station_and_store(config, "another")
    with claim_station_and_store(config, "now free"):
        pass


def test_one_runtime_per_remote_station(tmp_path: Path) -> None:
    url = "tcp://127.0.0.1:5999"
    first = with_overrides(
        AppConfig(), station={"kind": "remote", "url": url}, store={"path": str(tmp_path / "a")}
    )
    other_store = with_overrides(first, store={"path": str(tmp_path / "b")})
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with claim_station_and_store(first, "`takeover engine`"):
        assert station_lock_path(url).is_file()
        with pytest.raises(LockHeldError, match=rf"^the station at {url} is in use by `takeover engine`"):
            claim_station_and_store(other_store, "second")
        # the simulated station lives in each run: only the store is shared, and it is not here
        with claim_station_and_store(with_overrides(other_store, station={"kind": "metaworld"}), "sim"):
            pass


@pytest.mark.slow
@pytest.mark.gui
def test_a_second_console_on_the_same_store_is_refused_in_one_line(tmp_path: Path) -> None:
    """The console's engine takes the locks; a second `takeover run` hears why it cannot, in one
    line, exit 2, before any window opens."""
    Store.create(tmp_path / "store").close()
    config = with_overrides(AppConfig(), store={"path": str(tmp_path / "store")})
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    with claim_station_and_store(config, "`takeover run` (pid 4242)"):
        done = subprocess.run(
            [sys.executable, "-m", "takeover.app.cli", "run", "--store", str(tmp_path / "store")],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
    assert done.returncode == 2, done.stderr
    line = one_error_line(done.stderr)
    assert "is in use by `takeover run` (pid 4242)" in line and "one console per store" in line
