"""Collection seeds from the catalog, on SQLite and PostgreSQL: each handed out once, never inside
the evaluation range, also when several processes ask at once; each episode's seed is cataloged."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from takeover.storage.catalog import Catalog
from takeover.storage.errors import ReadOnlyStoreError, SeedsExhaustedError
from takeover.storage.seeds import MAX_SEED, SeedRange
from takeover.storage.store import Store
from takeover.storage.testing import make_episode

EVAL = SeedRange(5000, 9999)


class TestSeedContract:
    def test_seeds_count_up_from_zero_and_skip_the_reserved_range(self, catalog: Catalog) -> None:
        assert [catalog.allocate_seed(SeedRange(3, 5)) for _ in range(5)] == [0, 1, 2, 6, 7]
        # A later, wider reservation is honoured from then on; handed-out seeds are never handed again.
        assert catalog.allocate_seed(SeedRange(8, 20)) == 21

    def test_explicit_seeds_are_entered_and_never_handed_out(self, catalog: Catalog) -> None:
        assert catalog.claim_seed(40) is True
        assert catalog.claim_seed(40) is False  # used before: the caller may say so
        assert catalog.allocate_seed(EVAL) == 41
        assert catalog.claim_seed(41) is False

    def test_the_last_seed_runs_out_with_a_clear_error(self, catalog: Catalog) -> None:
        catalog.claim_seed(MAX_SEED)
        with pytest.raises(SeedsExhaustedError, match="every collection seed up to 2147483647"):
            catalog.allocate_seed(EVAL)
        assert catalog.claim_seed(MAX_SEED - 1) is True  # the refused allocation left nothing behind

    def test_the_catalog_knows_each_episodes_seed(self, catalog: Catalog) -> None:
        for i, seed in enumerate((7, 5003, 7)):
            ep = make_episode(f"ep-{i}", seed=seed)
            catalog.add_episode(ep.meta, "a" * 64, ep.num_steps, ep.events)
        no_seed = make_episode("ep-x")
        meta = dataclasses.replace(no_seed.meta, seed=None)
        catalog.add_episode(meta, "b" * 64, no_seed.num_steps, no_seed.events)
        assert catalog.get_episode("ep-1").seed == 5003 and catalog.get_episode("ep-x").seed is None
        assert [e.episode_id for e in catalog.list_episodes(seed=7)] == ["ep-0", "ep-2"]
        assert {e.episode_id: e.seed for e in catalog.list_episodes()}["ep-x"] is None


_ALLOCATE = """
import json, sys
from takeover.storage.catalog import Catalog
from takeover.storage.seeds import SeedRange
url, schema, n = sys.argv[1], sys.argv[2] or None, int(sys.argv[3])
with Catalog(url, schema=schema) as cat:
    cat.count_episodes()  # connected and warm before the start
    print("ready", flush=True)
    sys.stdin.readline()
    print(json.dumps([cat.allocate_seed(SeedRange(20, 29)) for _ in range(n)]))
"""


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_processes_allocating_at_once_never_get_the_same_seed(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url, schema = f"sqlite:///{tmp_path / 'catalog.db'}", ""
    else:
        url, schema = request.getfixturevalue("pg_schema")
    Catalog(url, schema=schema or None).connect().close()  # tables exist before the race
    n, procs = 25, 3
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _ALLOCATE, url, schema, str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(procs)
    ]
    for child in children:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
    for child in children:  # all at once
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    got = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        got.append(json.loads(out))
    seeds = sorted(s for g in got for s in g)
    assert seeds == [s for s in range(procs * n + 10) if s not in SeedRange(20, 29)]
    assert all(g == sorted(g) for g in got)  # each process sees its seeds rise


def test_a_store_hands_out_seeds_and_a_read_only_one_refuses(tmp_path: Path) -> None:
    with Store.create(tmp_path / "s") as store:
        assert [store.allocate_seed(EVAL) for _ in range(2)] == [0, 1]
        assert store.claim_seed(3) is True
    with Store.open(tmp_path / "s") as store:
        assert store.allocate_seed(EVAL) == 4
    with Store.open(tmp_path / "s") as store:
        store.read_only = True  # what connect() finds for a store this user may not write
        with pytest.raises(ReadOnlyStoreError, match="cannot hand out a collection seed: the store at"):
            store.allocate_seed(EVAL)


def test_seeds_come_from_configuration_or_the_store(tmp_path: Path) -> None:
    from takeover.app.runtime.config import ConfigError, SeedsSection
    from takeover.app.runtime.seeds import SeedSource, check_attempts

    with Store.create(tmp_path / "s") as store:
        collect = SeedSource(SeedsSection(), store)
        assert [collect.next(), collect.next()] == [0, 1]
        explicit = SeedSource(SeedsSection(start=4998), store)
        assert [explicit.next(), explicit.next()] == [4998, 4999]
        with pytest.raises(ConfigError, match=r"seed 5000 is in the range 5000\.\.9999 reserved"):
            explicit.next()
        assert collect.next() == 10000  # past every seed used, and past the reserved range
        evaluate = SeedSource(SeedsSection(evaluation=True), store)
        assert [evaluate.next(), evaluate.next()] == [5000, 5001]
        assert SeedSource(SeedsSection(evaluation=True), store).next() == 5000  # evaluation repeats
        assert collect.next() == 10001
    check_attempts(SeedsSection(start=4000), 1000)
    with pytest.raises(ConfigError, match=r"would use seeds 4001\.\.5000, but seed 5000 is in the range"):
        check_attempts(SeedsSection(start=4001), 1000)
    with pytest.raises(ConfigError, match="evaluation seeds come from the reserved range"):
        check_attempts(SeedsSection(evaluation=True, start=9990), 20)
