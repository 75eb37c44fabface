"""Streaming pulls from a real S3 endpoint (moto's server on loopback): nothing copied up front,
blobs fetched on first access into a bounded cache that the DataLoader workers share, each
blob fetched once by one worker while the other waits, every blob verified before use."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from takeover.storage import pull
from takeover.storage.blob_cache import BoundedBlobCache
from takeover.storage.errors import CorruptBlobError
from takeover.storage.s3blobs import S3BlobStore
from takeover.storage.schema import CameraStream
from takeover.storage.store import Store
from takeover.storage.testing import encode_rgb_jpeg, frames_in_a_log, make_episode

KEYS = ["state", "step_index", "episode_index", "images.front"]


@pytest.fixture
def s3_store(tmp_path: Path, s3_url: str) -> Store:
    """Four episodes whose camera frames (noise, so the blobs have some size) live in S3."""
    rng = np.random.default_rng(0)
    with Store.create(tmp_path / "store", blob_url=s3_url) as store:
        for k in range(4):
            ep = make_episode(f"ep{k}", 16, seed=k, cameras=("front",))
            cam = ep.cameras["front"]
            images = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(len(cam.frames))]
            ep.cameras["front"] = CameraStream(
                "front", [encode_rgb_jpeg(im) for im in images], cam.timestamps, cam.step_index, 48, 64
            )
            frames_in_a_log(ep, "front", tmp_path / f"ep{k}.log")
            store.add_episode(ep)
        store.commit("v1")
    return Store.open(tmp_path / "store", blob_url=s3_url)


@pytest.fixture
def fetch_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every whole-blob fetch from S3, one line per fetch, from any process (forked workers append
    to the same file); each fetch is slowed down so that two workers meet on the same blob."""
    log = tmp_path / "fetches.log"
    real = S3BlobStore.open

    def logged(self: S3BlobStore, digest: str) -> BinaryIO:
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {digest}\n")
        time.sleep(0.05)
        return real(self, digest)

    monkeypatch.setattr(S3BlobStore, "open", logged)
    return log


def _fetched(log: Path) -> list[str]:
    return [line.split()[1] for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.timeout(120)
def test_two_workers_share_one_fetch_of_each_blob(s3_store: Store, tmp_path: Path, fetch_log: Path) -> None:
    ds = pull("v1", s3_store, cache_dir=tmp_path / "cache", keys=KEYS, stream=True, cache_max_bytes=1 << 30)
    files = {e.digest for e in s3_store.episodes_in("v1")}
    assert set(_fetched(fetch_log)) == files  # the episode files only: no frame blob up front
    loader = DataLoader(ds, batch_size=4, num_workers=2, multiprocessing_context="fork")
    batches = list(loader)
    fetched = _fetched(fetch_log)
    frame_blobs = {d for ds_ in s3_store.catalog.frame_blobs().values() for d in ds_}
    assert sorted(fetched) == sorted(files | frame_blobs), "each blob fetched once by one process"
    assert torch.cat([b["step_index"] for b in batches]).tolist() == list(range(16)) * 4
    copied = pull("v1", s3_store, cache_dir=tmp_path / "copy", keys=KEYS)
    for i in (0, 17, 40, 63):
        torch.testing.assert_close(batches[i // 4]["images.front"][i % 4], copied[i]["images.front"])


@pytest.mark.timeout(120)
def test_a_bound_smaller_than_the_version_evicts_and_refetches(
    s3_store: Store, tmp_path: Path, fetch_log: Path
) -> None:
    frame_blobs = {d for ds_ in s3_store.catalog.frame_blobs().values() for d in ds_}
    sizes = {d: s3_store.blobs.size(d) for d in frame_blobs}
    version = sum(sizes.values()) + sum(s3_store.blobs.size(e.digest) for e in s3_store.episodes_in("v1"))
    bound = max(sizes.values()) * 2
    assert bound < version / 2
    ds = pull("v1", s3_store, cache_dir=tmp_path / "cache", keys=KEYS, stream=True, cache_max_bytes=bound)
    loader = DataLoader(
        ds,
        batch_size=8,
        num_workers=2,
        shuffle=True,
        multiprocessing_context="fork",
        persistent_workers=False,
    )
    seen = torch.cat([b["episode_index"] * 100 + b["step_index"] for b in loader]).sort().values
    assert seen.tolist() == [e * 100 + s for e in range(4) for s in range(16)]
    cache = BoundedBlobCache(s3_store.blobs, tmp_path / "cache" / "stream", bound)
    assert cache.used_bytes() <= bound
    assert len(_fetched(fetch_log)) > len(frame_blobs) + 4  # evicted blobs came back when needed


def test_a_corrupt_blob_in_the_bucket_is_never_used(s3_store: Store, tmp_path: Path) -> None:
    victim = sorted(d for ds_ in s3_store.catalog.frame_blobs().values() for d in ds_)[0]
    blobs = s3_store.blobs
    assert isinstance(blobs, S3BlobStore)
    data = bytearray(blobs.get_bytes(victim))
    data[10] ^= 0xFF
    blobs.fs.pipe_file(blobs.key(victim), bytes(data))  # damaged in place, behind the store's back
    ds = pull("v1", s3_store, cache_dir=tmp_path / "cache", keys=KEYS, stream=True, cache_max_bytes=1 << 30)
    with pytest.raises(CorruptBlobError, match=f"blob {victim} in the store at s3://.* is corrupt"):
        for i in range(len(ds)):
            ds[i]
    assert not (tmp_path / "cache" / "stream" / "blobs" / "sha256" / victim[:2] / victim).exists()


def test_a_training_cache_built_through_a_small_streaming_cache(s3_store: Store, tmp_path: Path) -> None:
    frame_blobs = {d for ds_ in s3_store.catalog.frame_blobs().values() for d in ds_}
    bound = max(s3_store.blobs.size(d) for d in frame_blobs) + 1
    ds = pull(
        "v1",
        s3_store,
        cache_dir=tmp_path / "cache",
        keys=KEYS,
        stream=True,
        cache_max_bytes=bound,
        image_size=(24, 32),
    )
    copied = pull("v1", s3_store, cache_dir=tmp_path / "copy", keys=KEYS)
    for i in (0, 20, 63):
        small, big = ds[i]["images.front"], copied[i]["images.front"]
        assert small.shape == (3, 24, 32)
        assert (small.float().mean() - big.float().mean()).abs() < 3
    assert BoundedBlobCache(s3_store.blobs, tmp_path / "cache" / "stream", bound).used_bytes() <= bound
