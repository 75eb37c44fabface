"""Commit and tag killed with SIGKILL at random points: every version is whole or absent.

Six processes at a time commit versions into one store as fast as they can (each a random
selection, half of them made from a parent; every third one its parent with episodes added and
removed, stored as a delta), and each is killed at a random moment, so kills land
before, inside and after the catalog transaction. Afterwards every tag names a version, every
version has its tag (they are written in one transaction), every manifest hashes to its digest and
lists only cataloged episodes, and fsck finds nothing. Two rounds on SQLite and on PostgreSQL:
24 kills.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from takeover.storage.fsck import fsck
from takeover.storage.store import Store
from takeover.storage.testing import make_episode

CHILD = r"""
import random, sys
from takeover.storage.store import Store
root, url, schema, name, seed = sys.argv[1:6]
rng = random.Random(int(seed))
with Store.open(root, url or None, catalog_schema=schema or None) as store:
    ids = [r.episode_id for r in store.list_episodes()]
    print("ready", flush=True)
    parent = ""
    for k in range(10_000):
        tag = f"{name}-{k}"
        if k % 3 == 2:  # the parent changed by episodes added and removed: stored as a delta
            held = [e.episode_id for e in store.resolve(parent).manifest.episodes]
            add = rng.sample([i for i in ids if i not in held], min(2, len(ids) - len(held)))
            remove = rng.sample(held, 1) if len(held) > 1 else []
            store.commit(tag, parent=parent, add=add, remove=remove)
        else:
            store.commit(tag, rng.sample(ids, rng.randint(1, len(ids))), parent=parent if k % 2 else "")
        parent = tag
"""

ROUNDS, CHILDREN = 2, 6


def _trials(root: Path, url: str, schema: str) -> int:
    rng = random.Random(1234)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    kills = 0
    for rnd in range(ROUNDS):
        children = [
            subprocess.Popen(
                [sys.executable, "-c", CHILD, str(root), url, schema, f"r{rnd}c{c}", str(rng.randrange(99))],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for c in range(CHILDREN)
        ]
        for child in children:
            assert child.stdout is not None
            line = child.stdout.readline()
            assert line.strip() == "ready", child.stderr.read() if child.stderr else ""
        for child in children:
            # A random moment in the middle of a stream of commits (each a few milliseconds long).
            time.sleep(rng.uniform(0.0, 0.15))
            assert child.poll() is None, f"a committer ended before it was killed: {child.communicate()}"
            child.send_signal(signal.SIGKILL)
            kills += 1
        for child in children:
            child.communicate(timeout=30)
            assert child.returncode == -signal.SIGKILL
    return kills


def _check(store: Store) -> int:
    tags = store.tags()
    versions = store.catalog.materialised_versions()
    assert tags, "the committers were killed before any commit: the trial proves nothing"
    # Version and tag are written together: no version is left without a tag made for it (two
    # committers may make the same version, the same selection, under two tags).
    assert {t.digest for t in tags} == {d for d, _, _ in versions}
    cataloged = {r.episode_id for r in store.list_episodes()}
    for tag in tags:
        version = store.resolve(tag.name)
        assert version.manifest.digest() == version.digest
        assert {e.episode_id for e in version.manifest.episodes} <= cataloged
    assert any(store.catalog.version_storage(t.digest).delta for t in tags)  # deltas were killed too
    report = fsck(store)
    assert report.clean, [p.line() for p in report.problems]
    assert report.versions == len({t.digest for t in tags})
    return len(tags)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_commit_killed_at_random_points_leaves_whole_versions(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url, schema = "", ""
    if backend == "postgres":
        url, schema = request.getfixturevalue("pg_schema")
    root = tmp_path / "store"
    with Store.create(root, url or None, catalog_schema=schema or None) as store:
        for k in range(40):
            store.add_episode(make_episode(f"ep{k:02d}", 6, seed=k, cameras=()))
    kills = _trials(root, url, schema)
    assert kills == ROUNDS * CHILDREN
    with Store.open(root, url or None, catalog_schema=schema or None) as store:
        committed = _check(store)
    # Each committer got through some commits before its kill.
    assert committed >= ROUNDS * CHILDREN
