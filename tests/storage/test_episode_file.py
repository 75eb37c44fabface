from __future__ import annotations

import hashlib
import multiprocessing as mp
from pathlib import Path

import h5py
import numpy as np
import pytest

from takeover.storage.episode_file import EpisodeReader, read_episode, read_header, write_episode
from takeover.storage.errors import EpisodeFileError
from takeover.storage.schema import SCHEMA_VERSION, Episode
from takeover.storage.testing import make_episode


def _assert_same(a: Episode, b: Episode) -> None:
    assert a.meta == b.meta
    for name in ("timestamps", "state", "action", "proposed_action", "control_source"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)  # NaN-aware: NaN proposals survive
    assert a.events == b.events
    assert a.cameras.keys() == b.cameras.keys()
    for name, cam in a.cameras.items():
        other = b.cameras[name]
        assert other.frames == cam.frames
        np.testing.assert_array_equal(other.timestamps, cam.timestamps)
        np.testing.assert_array_equal(other.step_index, cam.step_index)
        assert (other.height, other.width, other.dropped) == (cam.height, cam.width, cam.dropped)


def test_round_trip(tmp_path: Path) -> None:
    ep = make_episode("ep-1", 30, cameras=("front", "wrist"), takeover_at=7, seed=3)
    write_episode(ep, tmp_path / "e.h5")
    back = read_episode(tmp_path / "e.h5")
    _assert_same(ep, back)
    assert np.isnan(back.proposed_action[-1]).all()
    with h5py.File(tmp_path / "e.h5", "r") as f:
        assert f.attrs["schema_version"] == SCHEMA_VERSION
        assert f["cameras/front/frames"].dtype.metadata["vlen"] == np.uint8


@pytest.mark.parametrize("cameras", [(), ("front",)])
def test_round_trip_of_an_empty_episode(tmp_path: Path, cameras: tuple[str, ...]) -> None:
    ep = make_episode("empty", 0, cameras=cameras)
    write_episode(ep, tmp_path / "e.h5")
    back = read_episode(tmp_path / "e.h5")
    _assert_same(ep, back)
    assert back.state.shape == (0, 5)
    assert all(len(c.frames) == 0 for c in back.cameras.values())


def test_same_episode_gives_the_same_bytes(tmp_path: Path) -> None:
    ep = make_episode("ep-1")
    write_episode(ep, tmp_path / "a.h5")
    write_episode(ep, tmp_path / "b.h5")
    digests = {hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in ("a.h5", "b.h5")}
    assert len(digests) == 1


def test_invalid_episode_is_refused_before_writing(tmp_path: Path) -> None:
    ep = make_episode("bad", 10)
    ep.action = ep.action[:5]
    with pytest.raises(ValueError, match="action"):
        write_episode(ep, tmp_path / "bad.h5")
    assert not (tmp_path / "bad.h5").exists()


def test_non_episode_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(EpisodeFileError, match="not a readable HDF5"):
        read_episode(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.attrs["format"] = "something else"
    with pytest.raises(EpisodeFileError, match="not a takeover episode"):
        read_header(tmp_path / "other.h5")


def test_header(tmp_path: Path) -> None:
    ep = make_episode("ep-1", 9, cameras=("front",), image_size=(6, 10))
    write_episode(ep, tmp_path / "e.h5")
    h = read_header(tmp_path / "e.h5")
    assert (h.meta, h.num_steps, h.cameras) == (ep.meta, 9, {"front": (6, 10)})


def test_reader_is_lazy_and_finds_latest_frame(tmp_path: Path) -> None:
    ep = make_episode("ep-1", 12, frame_every=3, first_frame_step=1)  # frames at steps 1, 4, 7, 10
    write_episode(ep, tmp_path / "e.h5")
    r = EpisodeReader(tmp_path / "e.h5")
    assert not r.is_open
    frames = ep.cameras["front"].frames
    assert r.frame_at("front", 0) is None
    assert [r.frame_at("front", s) for s in (1, 3, 4, 9, 11)] == [frames[i] for i in (0, 0, 1, 2, 3)]
    assert r.is_open and r.num_steps == 12 and r.camera_names == ["front"]
    np.testing.assert_array_equal(r.array("state"), ep.state)
    r.close()
    assert not r.is_open


def _read_in_child(reader: EpisodeReader, out: mp.Queue) -> None:
    out.put((reader.is_open, reader.num_steps, reader.is_open))


def test_reader_reopens_in_a_forked_process(tmp_path: Path) -> None:
    ep = make_episode("ep-1", 12)
    write_episode(ep, tmp_path / "e.h5")
    r = EpisodeReader(tmp_path / "e.h5")
    assert r.num_steps == 12  # opened in the parent
    ctx = mp.get_context("fork")
    q: mp.Queue = ctx.Queue()
    p = ctx.Process(target=_read_in_child, args=(r, q))
    p.start()
    result = q.get(timeout=30)
    p.join(timeout=30)
    # in the child, the inherited handle does not count as open; the reader opens its own
    assert result == (False, 12, True)
    assert r.is_open
    r.close()
