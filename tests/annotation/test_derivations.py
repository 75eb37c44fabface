"""Storing smoothing results next to their episode, on SQLite and PostgreSQL catalogs."""

from __future__ import annotations

import numpy as np
import pytest

from takeover.annotation.derivations import (
    decode_smoothed,
    encode_smoothed,
    find_derivation,
    list_derivations,
    load_smoothed,
    smooth_and_store,
    store_smoothed,
)
from takeover.annotation.params import SmoothingParams
from takeover.annotation.smoothing import smooth_episode
from takeover.storage.blobs import LocalBlobStore
from takeover.storage.errors import CorruptBlobError
from takeover.storage.store import Store

from .helpers import H, P, assert_episodes_equal, build_episode


def _episode(episode_id: str = "ep-1"):
    return build_episode(
        [P] * 10 + [H] * 20 + [P] * 10,
        idle=range(10, 18),
        frames=list(range(0, 40, 2)),
        episode_id=episode_id,
    )


def test_blob_is_deterministic_and_round_trips() -> None:
    ep = _episode()
    sm = smooth_episode(ep)
    data = encode_smoothed(sm, "a" * 64)
    assert data == encode_smoothed(smooth_episode(ep), "a" * 64)
    record, back = decode_smoothed(data)
    assert record["name"] == "boundary_smoothing" and record["version"] == 1
    assert record["params"] == sm.params.to_dict() and record["input_digest"] == "a" * 64
    assert back.changes == sm.changes and back.dropped_frames == sm.dropped_frames
    assert_episodes_equal(back.to_episode(ep), sm.to_episode(ep))
    assert not back.keep.flags.writeable


def test_store_load_round_trip(any_store: Store) -> None:
    ep = _episode()
    digest = any_store.add_episode(ep)
    params = SmoothingParams(blend_window=3)
    assert load_smoothed(any_store, "ep-1", params) is None
    record, created, sm = smooth_and_store(any_store, "ep-1", params, clock=lambda: 1234.5)
    assert created and record.input_digest == digest and record.created_at == 1234.5
    assert any_store.derived_blobs.verify(record.digest)
    # idempotent: a second run finds the stored derivation
    record2, created2, _ = smooth_and_store(any_store, "ep-1", params)
    assert not created2 and record2 == record
    assert store_smoothed(any_store, sm)[1] is False
    loaded = load_smoothed(any_store, "ep-1", params)
    assert loaded is not None
    raw = any_store.read_episode("ep-1")
    assert_episodes_equal(loaded.to_episode(raw), sm.to_episode(raw))
    # other parameters are another derivation
    assert load_smoothed(any_store, "ep-1") is None
    smooth_and_store(any_store, "ep-1", SmoothingParams())
    stored = [r.params_digest for r in list_derivations(any_store, "ep-1")]
    assert stored == [params.digest(), SmoothingParams().digest()]  # in order of creation
    # the raw episode is unchanged in the store
    np.testing.assert_array_equal(raw.action, ep.action)
    assert any_store.get_episode("ep-1").blob_digest == digest


def test_a_corrupt_derivation_blob_is_refused(tmp_path) -> None:
    with Store.create(tmp_path / "s") as store:
        store.add_episode(_episode())
        record, _, _ = smooth_and_store(store, "ep-1", SmoothingParams())
        assert isinstance(store.derived_blobs, LocalBlobStore)
        path = store.derived_blobs.path(record.digest)
        path.chmod(0o644)
        path.write_bytes(b"not the blob")
        with pytest.raises(CorruptBlobError):
            load_smoothed(store, "ep-1")
        assert find_derivation(store, "ep-1", SmoothingParams()) == record
