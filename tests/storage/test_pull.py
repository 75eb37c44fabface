from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from takeover.storage import pull
from takeover.storage.errors import CorruptBlobError, StoreNotFoundError, UnknownTagError
from takeover.storage.schema import ControlSource, EventKind, camera_event
from takeover.storage.store import Store
from takeover.storage.testing import frame_color, make_episode


@pytest.fixture
def tagged(store: Store) -> Store:
    # b: frames at steps 1, 4, 7, 10 on two cameras; a: shorter, frames from step 0
    store.add_episode(
        make_episode("b", 12, seed=2, cameras=("front", "wrist"), first_frame_step=1, takeover_at=6)
    )
    store.add_episode(
        make_episode("a", 5, seed=1, cameras=("front", "wrist"), success=False, outcome="failure")
    )
    store.commit("v1")
    return store


def _close_color(img: torch.Tensor, rgb: tuple[int, int, int]) -> bool:
    return bool((img.to(torch.int16) - torch.tensor(rgb, dtype=torch.int16)[:, None, None]).abs().max() <= 4)


def test_items_have_the_right_tensors(tagged: Store, tmp_path: Path) -> None:
    ds = pull("v1", tagged, cache_dir=tmp_path / "cache")
    assert len(ds) == 17 and ds.version == tagged.resolve("v1").digest
    assert [m.episode_id for m in ds.episodes] == ["a", "b"]
    b = tagged.read_episode("b")
    item = ds[5 + 7]  # episode b, step 7
    assert item["state"].dtype == torch.float32 and item["state"].shape == (5,)
    np.testing.assert_array_equal(item["state"].numpy(), b.state[7])
    np.testing.assert_array_equal(item["action"].numpy(), b.action[7])
    np.testing.assert_array_equal(item["proposed_action"].numpy(), b.proposed_action[7])
    assert item["control_source"].dtype == torch.int64 and item["control_source"].ndim == 0
    assert int(item["control_source"]) == int(ControlSource.HUMAN)
    assert item["timestamp"].dtype == torch.float64 and float(item["timestamp"]) == b.timestamps[7]
    assert (int(item["episode_index"]), int(item["step_index"])) == (1, 7)
    assert item["success"].dtype == torch.bool and bool(item["success"])
    assert not bool(ds[0]["success"])  # the operator said failure
    assert torch.isnan(ds[-1]["proposed_action"]).all()
    img = item["images.front"]
    assert img.dtype == torch.uint8 and img.shape == (3, 8, 16)


def test_images_are_rgb_latest_frame_at_or_before_step(tagged: Store, tmp_path: Path) -> None:
    ds = pull("v1", tagged, cache_dir=tmp_path / "cache")
    # episode b (index 1) has frames at steps 1, 4, 7, 10
    expected_frame = {0: None, 1: 0, 2: 0, 3: 0, 4: 1, 6: 1, 7: 2, 11: 3}
    for step, frame in expected_frame.items():
        item = ds[5 + step]
        for ci, cam in enumerate(("front", "wrist")):
            img = item[f"images.{cam}"]
            if frame is None:
                assert int(img.max()) == 0, "no frame yet: black"
            else:
                assert _close_color(img, frame_color(ci, frame)), (step, cam)
    # the channel order is RGB: red and blue differ in these colors and would swap under BGR
    r, g, b = frame_color(0, 0)
    assert abs(r - b) > 50 and _close_color(ds[5 + 1]["images.front"], (r, g, b))


def test_dataloader_with_workers(tagged: Store, tmp_path: Path) -> None:
    ds = pull("v1", tagged, cache_dir=tmp_path / "cache")
    loader = DataLoader(ds, batch_size=4, num_workers=2, shuffle=False, multiprocessing_context="fork")
    batches = list(loader)
    steps = torch.cat([bt["step_index"] for bt in batches]).tolist()
    assert steps == list(range(5)) + list(range(12))
    assert batches[0]["images.wrist"].shape == (4, 3, 8, 16)
    assert not any(r.is_open for r in ds._readers), "the parent process opened no episode file"


def test_pull_by_path_and_default_store(
    tagged: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = pull("v1", tagged.root, cache_dir=tmp_path / "c1")
    assert len(ds) == 17
    monkeypatch.setenv("TAKEOVER_STORE", str(tagged.root))
    monkeypatch.setenv("TAKEOVER_CACHE", str(tmp_path / "c2"))
    ds2 = pull("v1")
    assert ds2.version == ds.version and (tmp_path / "c2" / "blobs" / "sha256").is_dir()


def test_corrupt_cache_file_is_fetched_again(tagged: Store, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    ds = pull("v1", tagged, cache_dir=cache)
    victim = ds.files[1]
    os.chmod(victim, 0o644)
    victim.write_bytes(b"garbage")
    ds2 = pull("v1", tagged, cache_dir=cache)
    assert ds2.files[1] == victim and tagged.blobs.path(victim.name).read_bytes() == victim.read_bytes()
    np.testing.assert_array_equal(ds2[5]["state"].numpy(), tagged.read_episode("b").state[0])


def test_a_second_pull_trusts_unchanged_stamped_files_and_full_verify_rehashes(
    tagged: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from takeover.storage import blobs

    cache = tmp_path / "cache"
    ds = pull("v1", tagged, cache_dir=cache)
    hashed: list[Path] = []
    real = blobs.sha256_file

    def counting(path: Path) -> str:
        hashed.append(Path(path))
        return real(path)

    monkeypatch.setattr(blobs, "sha256_file", counting)
    pull("v1", tagged, cache_dir=cache)
    assert hashed == []  # every cached file matched the stamp written when it was hashed
    # Bit rot that keeps size and time is invisible to the stamp; verify="full" finds it.
    victim = ds.files[0]
    st = victim.stat()
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    os.chmod(victim, 0o644)
    victim.write_bytes(bytes(data))
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert pull("v1", tagged, cache_dir=cache).files[0] == victim and victim.read_bytes() == bytes(data)
    ds3 = pull("v1", tagged, cache_dir=cache, verify="full")
    assert len(hashed) >= len(ds.files)
    assert ds3.files[0].read_bytes() == tagged.blobs.path(victim.name).read_bytes()
    with pytest.raises(ValueError, match="verify"):
        pull("v1", tagged, cache_dir=cache, verify="sometimes")  # type: ignore[arg-type]


def test_corrupt_store_blob_is_refused(tagged: Store, tmp_path: Path) -> None:
    digest = tagged.episodes_in("v1")[0].digest
    p = tagged.blobs.path(digest)
    os.chmod(p, 0o644)
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(CorruptBlobError, match="corrupt"):
        pull("v1", tagged, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "blobs" / "sha256" / digest[:2] / digest).exists()


def test_pull_errors(tagged: Store, tmp_path: Path) -> None:
    with pytest.raises(UnknownTagError, match="known tags: v1"):
        pull("v2", tagged, cache_dir=tmp_path / "cache")
    with pytest.raises(StoreNotFoundError, match="missing-store"):
        pull("v1", tmp_path / "missing-store", cache_dir=tmp_path / "cache")


def test_importing_storage_does_not_import_torch() -> None:
    code = (
        "import sys, takeover.storage, takeover.storage.store, takeover.storage.catalog\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "from takeover.storage.pull import EpisodeDataset\n"
        "from takeover.storage import pull\n"
        "assert callable(pull) and pull.__name__ == 'pull', pull\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.fixture
def gappy(store: Store) -> Store:
    """A version whose wrist camera is missing in one episode and was down for a while in another."""
    store.add_episode(make_episode("a", 6, seed=1, cameras=("front",)))
    store.add_episode(make_episode("b", 6, seed=2, cameras=("front", "wrist")))
    c = make_episode("c", 12, seed=3, cameras=("front", "wrist"))  # frames at steps 0, 3, 6, 9
    t = c.timestamps
    c.events[1:1] = [
        camera_event(EventKind.CAMERA_DOWN, 4, float(t[4]), "wrist", "no frame from 0"),
        camera_event(EventKind.CAMERA_UP, 9, float(t[9]), "wrist", "back after 0.50 s, 14 frames missed"),
    ]
    store.add_episode(c)
    store.commit("gappy")
    return store


def test_a_camera_missing_in_one_episode_is_masked_there_not_dropped(gappy: Store, tmp_path: Path) -> None:
    ds = pull("gappy", gappy, cache_dir=tmp_path / "cache")
    assert ds.cameras == ["front", "wrist"] and len(ds) == 24
    for i in range(6):  # episode a has no wrist camera: zeros of the version's size, not valid
        item = ds[i]
        assert not bool(item["images.wrist.valid"]) and item["images.wrist.valid"].dtype == torch.bool
        assert item["images.wrist"].shape == (3, 8, 16) and int(item["images.wrist"].max()) == 0
        assert bool(item["images.front.valid"]) and int(item["images.front"].max()) > 0
    assert all(bool(ds[6 + i]["images.wrist.valid"]) for i in range(6))
    # Episode c: the wrist camera was down from step 4 until its frame at step 9.
    valid = [bool(ds[12 + i]["images.wrist.valid"]) for i in range(12)]
    assert valid == [True] * 4 + [False] * 5 + [True] * 3
    assert int(ds[12 + 6]["images.wrist"].max()) == 0  # its frame of step 6 is masked too
    assert _close_color(ds[12 + 9]["images.wrist"], frame_color(1, 3))
    assert all(bool(ds[12 + i]["images.front.valid"]) for i in range(12))
    batch = next(iter(DataLoader(ds, batch_size=24, shuffle=False)))
    assert batch["images.wrist.valid"].tolist() == [False] * 6 + [True] * 6 + valid
    # The version says so.
    assert ds.camera_coverage["front"].line() == "front: every step"
    wrist = ds.camera_coverage["wrist"]
    assert (wrist.missing, wrist.partial, wrist.masked_steps, wrist.steps) == (("a",), (("c", 5),), 11, 24)
    assert wrist.line() == (
        "wrist: 11 of 24 steps masked (images.wrist.valid is false there): no frame at all in 1 of "
        "3 episodes (a); no frame (down, or none yet) at 5 steps of 1 episode (c)"
    )
