"""A fleet on one PostgreSQL catalog and one S3 bucket: four stations record and commit at the same
time while two training machines pull whatever version is newest, over and over.

Each station is a process with its own local folder (write-ahead logs) that records 25 small
episodes through the real recorder, with episode ids made as the control loop makes them, and
commits a version of its episodes so far after each one. Each reader is a process that pulls the
newest version into its own cache, hashing every blob as it enters, and reads every step of it.
Afterwards the catalog holds exactly the 100 episodes, once each, every reader saw only whole
versions, and fsck finds nothing wrong.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from takeover.storage.fsck import fsck
from takeover.storage.store import Store

pytestmark = pytest.mark.postgres

WRITER = r"""
import json, sys, uuid
import numpy as np
from takeover.recorder.recorder import EpisodeRecorder
from takeover.recorder.testing import record_steps
from takeover.storage.store import Store
root, url, schema, blob_url, station, n = sys.argv[1:7]
image = np.full((24, 32, 3), 7 * len(station), dtype=np.uint8)
mine = []
with Store.open_or_create(root, url, catalog_schema=schema, blob_url=blob_url) as store:
    rec = EpisodeRecorder(store)
    for k in range(int(n)):
        eid = uuid.uuid4().hex[:12]  # as the control loop names an attempt
        record_steps(rec, eid, 6 + k % 4, image=image)
        mine.append(eid)
        store.commit(f"{station}-{k:02d}", mine, message=f"{station} after {k + 1} attempts")
print(json.dumps(mine), flush=True)
"""

READER = r"""
import json, sys, time
from takeover.storage import pull
from takeover.storage.store import Store
root, url, schema, blob_url, cache, stop_file = sys.argv[1:7]
pulls, steps, seen = 0, 0, set()
with Store.open_or_create(root, url, catalog_schema=schema, blob_url=blob_url) as store:
    print("ready", flush=True)
    last = time.monotonic() + 120
    while time.monotonic() < last:
        done = __import__("os").path.exists(stop_file)
        tags = store.tags()
        if tags:
            tag = max(tags, key=lambda t: t.created_at)
            # A fresh cache each time would re-download everything; "full" hashes every blob instead.
            ds = pull(tag.name, store, cache_dir=cache, verify="full")
            entries = store.resolve(tag.name).manifest.episodes
            assert ds.version == tag.digest
            assert [m.episode_id for m in ds.episodes] == [e.episode_id for e in entries]
            assert len(ds) == sum(e.length for e in entries)
            for i in range(len(ds)):
                item = ds[i]
                assert item["images.front.valid"].item() in (True, False)
            ds.close()
            pulls += 1
            steps += len(ds)
            seen.add(tag.name)
        if done:
            break
        time.sleep(0.05)
print(json.dumps({"pulls": pulls, "steps": steps, "tags": len(seen)}), flush=True)
"""

STATIONS, EPISODES, READERS = 4, 25, 2


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _result(proc: subprocess.Popen[str], timeout: float) -> object:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_four_stations_and_two_readers_share_one_catalog_and_one_bucket(
    tmp_path: Path, pg_schema: tuple[str, str], s3_url: str
) -> None:
    url, schema = pg_schema
    with Store.create(tmp_path / "lead", url, catalog_schema=schema, blob_url=s3_url):
        pass  # the catalog's tables exist before the stations start (they would make them too)
    stop = tmp_path / "writers-done"
    readers = [
        _spawn(
            READER, str(tmp_path / f"reader{r}"), url, schema, s3_url, str(tmp_path / f"cache{r}"), f"{stop}"
        )
        for r in range(READERS)
    ]
    for r in readers:  # the stations start once the readers are pulling
        assert r.stdout is not None and r.stdout.readline().strip() == "ready", r.communicate()
    writers = [
        _spawn(WRITER, str(tmp_path / f"station{s}"), url, schema, s3_url, f"station{s}", str(EPISODES))
        for s in range(STATIONS)
    ]
    recorded = [_result(w, 120) for w in writers]
    stop.touch()
    reads = [_result(r, 120) for r in readers]

    ids = [eid for station in recorded for eid in station]  # type: ignore[union-attr]
    assert len(ids) == STATIONS * EPISODES == len(set(ids))
    for r in reads:
        assert isinstance(r, dict)
        # Each reader pulled while the stations committed, and saw several versions.
        assert r["pulls"] >= 3 and r["tags"] >= 2, r
    with Store.open(tmp_path / "lead", url, catalog_schema=schema, blob_url=s3_url) as store:
        assert sorted(r.episode_id for r in store.list_episodes()) == sorted(ids)
        assert len(store.tags()) == STATIONS * EPISODES
        for s, mine in enumerate(recorded):
            last = store.resolve(f"station{s}-{EPISODES - 1:02d}").manifest
            assert [e.episode_id for e in last.episodes] == sorted(mine)  # type: ignore[arg-type]
        _, manifest = store.commit("fleet-all")
        assert len(manifest.episodes) == STATIONS * EPISODES
        report = fsck(store)
        assert report.clean, [p.line() for p in report.problems]
        assert report.episodes == STATIONS * EPISODES
