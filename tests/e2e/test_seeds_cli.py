"""Collection seeds through the real command: headless runs on the simulator never repeat a seed
within a store (a new run goes on where the last stopped), and the catalog and `data list` show
each seed. Explicit and evaluation seeds: tests/storage/test_seeds.py; their options:
tests/control/test_config.py and tests/e2e/test_cli_errors.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from takeover.app.cli import main
from takeover.storage.store import Store

pytestmark = [pytest.mark.sim, pytest.mark.slow]


def test_runs_take_fresh_seeds_from_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MUJOCO_GL", "egl")
    store = tmp_path / "store"
    store.mkdir()  # a store named on the command line must exist
    base = ["run", "--headless", "--no-policy", "--operator", "expert", "--max-steps", "2"]
    runs = [(["--episodes", "2"], [0, 1]), ([], [2])]  # a new session goes on where the last stopped
    for extra, seeds in runs:
        assert main([*base, "--store", str(store), *extra]) == 0
        lines = [line for line in capsys.readouterr().out.splitlines() if "(seed " in line]
        assert [int(line.split("(seed ")[1].split(")")[0]) for line in lines] == seeds
    with Store.open(store) as s:
        records = s.list_episodes()
        assert [r.seed for r in records] == [0, 1, 2]
        assert all(s.read_episode(r.episode_id).meta.seed == r.seed for r in records)
    assert main(["data", "list", "--store", str(store)]) == 0
    table = capsys.readouterr().out.splitlines()
    at = table[0].index(" seed ") + 1  # columns are aligned under their headers
    assert [int(row[at:].split()[0]) for row in table[1:]] == [0, 1, 2]
