"""The pull Dataset: key selection (and what it fetches), windows with padding masks over the
version's step ranges, the training cache, and DataLoader workers started by spawn."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from takeover.storage import pull
from takeover.storage.blobs import LocalBlobStore
from takeover.storage.manifest import Manifest, ManifestEntry
from takeover.storage.pull import EpisodeDataset, KeyChoiceError, decode_rgb_chw
from takeover.storage.store import Store
from takeover.storage.testing import frame_color, frames_in_a_log, make_episode
from takeover.storage.train_cache import cache_path

PULL_MODULE = sys.modules[EpisodeDataset.__module__]


@pytest.fixture
def store_with_blobs(store: Store, tmp_path: Path) -> Store:
    """Two episodes whose camera frames live in frame blobs (as the recorder stores them)."""
    for eid, steps, seed in (("a", 10, 1), ("b", 12, 2)):
        ep = make_episode(eid, steps, seed=seed, cameras=("front", "wrist"), first_frame_step=1)
        for cam in ("front", "wrist"):
            frames_in_a_log(ep, cam, tmp_path / f"{eid}-{cam}.log")
        store.add_episode(ep)
    store.commit("v1")
    # A version that takes steps [2, 9) of b (trimmed without rewriting anything).
    entries = [
        ManifestEntry(
            e.episode_id, e.digest, e.num_steps, e.success, e.outcome, (2, 9) if e.episode_id == "b" else None
        )
        for e in store.episodes_in("v1")
    ]
    store.catalog.commit_version(Manifest.build(entries, {"selection": "trimmed"}), "trim")
    return store


class Fetches:
    def __init__(self) -> None:
        self.digests: list[str] = []


@pytest.fixture
def fetches(store_with_blobs: Store, monkeypatch: pytest.MonkeyPatch) -> Fetches:
    """Every blob read from the source store (not from the cache)."""
    seen = Fetches()
    real = LocalBlobStore.read_range

    def counting(self: LocalBlobStore, digest: str, start: int, length: int) -> bytes:
        if self.root == store_with_blobs.root:
            seen.digests.append(digest)
        return real(self, digest, start, length)

    monkeypatch.setattr(LocalBlobStore, "read_range", counting)
    return seen


def test_a_state_only_pull_fetches_no_frame_blob_and_decodes_nothing(
    store_with_blobs: Store, tmp_path: Path, fetches: Fetches, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame_blobs = {d for ds in store_with_blobs.catalog.frame_blobs().values() for d in ds}
    files = {e.digest for e in store_with_blobs.episodes_in("v1")}
    assert len(frame_blobs) == 4

    def no_decoding(jpeg: bytes) -> np.ndarray:
        raise AssertionError("a JPEG was decoded")

    monkeypatch.setattr(PULL_MODULE, "decode_rgb_chw", no_decoding)
    ds = pull("v1", store_with_blobs, cache_dir=tmp_path / "cache", keys=["state", "action"])
    items = [ds[i] for i in range(len(ds))]
    assert set(fetches.digests) == files and not set(fetches.digests) & frame_blobs
    assert sorted(items[0]) == ["action", "state"] and len(items) == 22
    np.testing.assert_array_equal(items[13]["state"].numpy(), store_with_blobs.read_episode("b").state[3])
    # One camera asked for: only that camera's frame blobs come (the episode files are cached).
    monkeypatch.setattr(PULL_MODULE, "decode_rgb_chw", decode_rgb_chw)
    fetches.digests.clear()
    one = pull("v1", store_with_blobs, cache_dir=tmp_path / "cache", keys=["state", "images.front"])
    front = {d for h in (read_episode_blobs(store_with_blobs, e) for e in ("a", "b")) for d in h}
    assert set(fetches.digests) == front and sorted(one[0]) == ["images.front", "images.front.valid", "state"]
    with pytest.raises(KeyChoiceError, match=r"no key images\.top in this version: its keys are state"):
        pull("v1", store_with_blobs, cache_dir=tmp_path / "cache", keys=["state", "images.top"])


def read_episode_blobs(store: Store, episode_id: str) -> list[str]:
    """The digest of the front camera's frame blob of an episode."""
    frames = store.read_episode(episode_id).cameras["front"].frames
    return [frames.digest]  # type: ignore[attr-defined]


def test_windows_pad_at_the_edges_of_the_versions_step_range(store_with_blobs: Store, tmp_path: Path) -> None:
    deltas = {"state": [-1, 0], "action": list(range(4)), "images.front": [-3, 0]}
    keys = ["state", "action", "step_index", "episode_index", "images.front"]
    ds = pull("trim", store_with_blobs, cache_dir=tmp_path / "cache", keys=keys, deltas=deltas)
    assert ds.version == store_with_blobs.resolve("trim").digest and len(ds) == 10 + 7
    b = store_with_blobs.read_episode("b")
    first = ds[10]  # b's range starts at step 2: the step before it is not the version's
    assert int(first["step_index"]) == 2 and int(first["episode_index"]) == 1
    np.testing.assert_array_equal(first["state"].numpy(), b.state[[2, 2]])
    assert first["state.pad"].tolist() == [True, False] and first["state.pad"].dtype == torch.bool
    last = ds[16]  # step 8, the last of the range, although b has steps up to 11
    assert int(last["step_index"]) == 8
    np.testing.assert_array_equal(last["action"].numpy(), b.action[[8, 8, 8, 8]])
    assert last["action.pad"].tolist() == [False, True, True, True]
    assert last["images.front"].shape == (2, 3, 8, 16) and last["images.front.pad"].tolist() == [False, False]
    assert last["images.front.valid"].tolist() == [True, True]
    # b's frames are at steps 1, 4, 7, 10: step 5 shows frame 1, step 8 frame 2
    assert _close(last["images.front"][0], frame_color(0, 1)) and _close(
        last["images.front"][1], frame_color(0, 2)
    )
    a0 = ds[0]  # episode a has no frame before step 1: a padded window of a black, invalid image
    assert a0["images.front.pad"].tolist() == [True, False] and a0["images.front.valid"].tolist() == [
        False,
        False,
    ]
    assert ds.camera_coverage["front"].steps == 17
    loader = DataLoader(ds, batch_size=5, num_workers=0)
    assert next(iter(loader))["action"].shape == (5, 4, 3)
    with pytest.raises(KeyChoiceError, match="no window for key 'success'"):
        pull("trim", store_with_blobs, cache_dir=tmp_path / "cache", deltas={"success": [0]})
    with pytest.raises(KeyChoiceError, match="keys= does not ask for"):
        pull(
            "trim", store_with_blobs, cache_dir=tmp_path / "cache", keys=["state"], deltas={"action": [0, 1]}
        )


def _close(img: torch.Tensor, rgb: tuple[int, int, int]) -> bool:
    diff = img.to(torch.int16) - torch.tensor(rgb, dtype=torch.int16)[:, None, None]
    return bool(diff.abs().max() <= 4)


def test_the_training_cache_is_built_once_and_read_without_decoding(
    store_with_blobs: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    plain = pull("trim", store_with_blobs, cache_dir=cache)
    ds = pull("trim", store_with_blobs, cache_dir=cache, image_size=(4, 6))
    folder = cache_path(cache, ds.version, "front", (4, 6))
    frames = np.load(folder / "frames.npy", mmap_mode="r")
    assert frames.shape == (3 + 3, 3, 4, 6)  # a: frames at 1, 4, 7; b's range [2, 9) shows frames 0, 1, 2
    for i in (1, 5, 12, 16):
        small, big = ds[i]["images.wrist"], plain[i]["images.wrist"]
        assert small.shape == (3, 4, 6) and bool(ds[i]["images.wrist.valid"])
        assert (small.float().mean((1, 2)) - big.float().mean((1, 2))).abs().max() <= 2
    assert not bool(ds[0]["images.front.valid"]) and ds[0]["images.front"].shape == (3, 4, 6)

    def no_decoding(jpeg: bytes) -> np.ndarray:
        raise AssertionError("a JPEG was decoded")

    monkeypatch.setattr(PULL_MODULE, "decode_rgb_chw", no_decoding)
    again = pull("trim", store_with_blobs, cache_dir=cache, image_size=(4, 6))
    torch.testing.assert_close(again[12]["images.front"], ds[12]["images.front"])
    batch = next(iter(DataLoader(again, batch_size=17, num_workers=2, multiprocessing_context="fork")))
    assert batch["images.front"].shape == (17, 3, 4, 6)


def test_an_interrupted_training_cache_build_leaves_nothing_that_looks_finished(
    store_with_blobs: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    real = EpisodeDataset._frame
    calls: list[int] = []

    def failing(self: EpisodeDataset, ep: int, camera: str, step: int) -> np.ndarray | None:
        calls.append(step)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, ep, camera, step)

    monkeypatch.setattr(EpisodeDataset, "_frame", failing)
    with pytest.raises(KeyboardInterrupt):
        pull("v1", store_with_blobs, cache_dir=cache, image_size=(4, 6))
    version = store_with_blobs.resolve("v1").digest
    assert not cache_path(cache, version, "front", (4, 6)).exists()
    assert [p.name for p in (cache / "train").iterdir() if not p.name.endswith(".lock")] == []
    monkeypatch.undo()
    ds = pull("v1", store_with_blobs, cache_dir=cache, image_size=(4, 6))
    assert bool(ds[4]["images.front.valid"]) and ds[4]["images.front"].shape == (3, 4, 6)


@pytest.mark.timeout(120)
def test_workers_started_by_spawn_read_the_same_items(store_with_blobs: Store, tmp_path: Path) -> None:
    ds = pull(
        "trim",
        store_with_blobs,
        cache_dir=tmp_path / "cache",
        keys=["state", "action", "images.front"],
        deltas={"action": [0, 1, 2]},
        image_size=(4, 6),
    )
    loader = DataLoader(ds, batch_size=17, num_workers=2, multiprocessing_context="spawn")
    batch = next(iter(loader))
    direct = [ds[i] for i in range(len(ds))]
    for key in ("state", "action", "action.pad", "images.front", "images.front.valid"):
        torch.testing.assert_close(batch[key], torch.stack([d[key] for d in direct]))


def test_items_carry_the_label_the_version_gives_their_episode(tmp_path: Path) -> None:
    """``label``: the outcome label the version froze (an annotator's relabelling over the
    operator's verdict), as LABEL_CODES; ``ds.episode_labels`` by episode."""
    from takeover.annotation.labels import relabel, version_labels
    from takeover.storage.label_revisions import Label
    from takeover.storage.pull_keys import LABEL_CODES

    root = tmp_path / "store"
    with Store.create(root) as st:
        st.add_episode(make_episode("a", 4, seed=1))
        st.add_episode(make_episode("b", 3, seed=2, outcome="failure", success=False))
        st.add_episode(make_episode("c", 2, seed=3))
        relabel(st, "c", Label(outcome="near_success"), annotator="bo")
        st.commit("v", labels=version_labels(st))
    ds = pull("v", store=root, cache_dir=tmp_path / "cache", keys=["label", "success"])
    assert ds.episode_labels == ["success", "failure", "near_success"]
    assert [int(ds[i]["label"]) for i in range(len(ds))] == [2] * 4 + [0] * 3 + [1] * 2
    assert LABEL_CODES == {"failure": 0, "near_success": 1, "success": 2}
    assert [bool(ds[i]["success"]) for i in (0, 4, 7)] == [
        True,
        False,
        True,
    ]  # near-success: the station's flag
