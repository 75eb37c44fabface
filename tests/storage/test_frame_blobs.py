"""Episodes whose frames live in a separate blob (a finished camera log): store, read, pull, commit."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from takeover.storage.pull import decode_rgb_chw, pull
from takeover.storage.record_log import LogWriter, scan
from takeover.storage.schema import Episode, FrameBlob
from takeover.storage.store import Store
from takeover.storage.testing import frames_in_a_log, make_episode


def _with_frame_blob(tmp_path: Path, episode_id: str, seed: int = 0) -> tuple[Episode, list[bytes]]:
    ep = make_episode(episode_id, 12, seed=seed, cameras=("front",))
    return ep, frames_in_a_log(ep, "front", tmp_path / f"{episode_id}.log")


def test_record_log_detects_a_torn_tail(tmp_path: Path) -> None:
    w = LogWriter(tmp_path / "x.log").open()
    w.append(3, b"hello")
    w.append(3, b"world")
    w.close()
    with open(tmp_path / "x.log", "r+b") as f:
        f.seek(-2, 2)
        f.write(b"!!")  # corrupt the last record's payload
    result = scan(tmp_path / "x.log")
    assert [r.payload for r in result.records] == [b"hello"] and result.torn


def test_store_adopts_the_frame_blob_and_reads_and_pulls_it(store: Store, tmp_path: Path) -> None:
    ep, frames = _with_frame_blob(tmp_path, "ep-1")
    store.add_episode(ep)
    back = store.read_episode("ep-1")
    assert list(back.cameras["front"].frames) == frames
    assert store.check().healthy
    store.commit("v1")
    ds = pull("v1", store, cache_dir=tmp_path / "cache")
    item = ds[3]  # frames every 3 steps: step 3 shows frame 1
    np.testing.assert_array_equal(item["images.front"].numpy(), decode_rgb_chw(frames[1]))


def test_a_missing_frame_blob_is_found_by_check_not_by_commit(store: Store, tmp_path: Path) -> None:
    ep, _ = _with_frame_blob(tmp_path, "ep-2")
    store.add_episode(ep)
    blob = ep.cameras["front"].frames
    assert isinstance(blob, FrameBlob)
    store.blobs.remove(blob.digest)
    store.commit("v2")  # a commit reads the catalog alone
    report = store.check()
    assert not report.healthy and any(blob.digest[:12] in line for line in report.damaged)
