"""Training labels stored as derivations, on SQLite and PostgreSQL catalogs (and S3 blobs)."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import numpy as np
import pytest

from takeover.annotation.derivation_catalog import list_derivations, read_blob
from takeover.annotation.derivations import smooth_and_store
from takeover.annotation.params import SmoothingParams
from takeover.annotation.training_labels import TrainingLabels
from takeover.annotation.training_params import TrainingLabelParams
from takeover.annotation.training_store import (
    DERIVATION_NAME,
    batch_inputs,
    decode_labels,
    derive_and_store,
    encode_labels,
    load_training_labels,
)
from takeover.storage.errors import StorageError
from takeover.storage.schema import TimedStream
from takeover.storage.store import Store

from .helpers import HOLD, RAMP, H, P, build_episode

LABELS = {"ep-a": "success", "ep-b": "failure", "ep-c": "near_success"}


def _add_batch(store: Store) -> None:
    store.add_episode(build_episode([P] * 12 + [H] * 6 + [RAMP] * 3 + [P] * 9, episode_id="ep-a"))
    store.add_episode(build_episode([P] * 20 + [HOLD] * 4 + [P] * 16, episode_id="ep-b"))
    c = build_episode([P] * 25, episode_id="ep-c")
    c.streams["policy.value"] = TimedStream(c.timestamps[::5].copy(), np.linspace(-1, 0, 5)[:, None])
    store.add_episode(c)


def _same(a: TrainingLabels, b: TrainingLabels) -> None:
    assert (a.threshold, a.horizon_steps, a.positive_fraction, a.non_human_steps) == (
        b.threshold,
        b.horizon_steps,
        b.positive_fraction,
        b.non_human_steps,
    )
    np.testing.assert_array_equal(a.baseline, b.baseline)
    for x, y in zip(a.episodes, b.episodes, strict=True):
        assert (x.episode_id, x.outcome, x.value_source, x.pre_window_steps) == (
            y.episode_id,
            y.outcome,
            y.value_source,
            y.pre_window_steps,
        )
        for key, arr in x.arrays().items():
            np.testing.assert_array_equal(arr, y.arrays()[key], err_msg=key)
            assert arr.dtype == y.arrays()[key].dtype


def test_derive_store_and_load(any_store: Store) -> None:
    _add_batch(any_store)
    ids = ["ep-c", "ep-a", "ep-b"]
    params = TrainingLabelParams(pre_window=5, pre_window_unit="steps")
    assert load_training_labels(any_store, ids, params, LABELS) is None
    labels, created = derive_and_store(any_store, ids, params, LABELS, clock=lambda: 99.0)
    assert created == 3
    rows = list_derivations(any_store, name=DERIVATION_NAME)
    assert [r.episode_id for r in rows] == ["ep-a", "ep-b", "ep-c"]
    assert {r.params_digest for r in rows} == {params.digest()} and {r.created_at for r in rows} == {99.0}
    assert all(any_store.derived_blobs.verify(r.digest) for r in rows)
    # A second run computes nothing and gives the same labels.
    again, created_again = derive_and_store(any_store, ids, params, LABELS)
    assert created_again == 0
    _same(again, labels)
    assert list_derivations(any_store, name=DERIVATION_NAME) == rows
    # Other parameters and other labels are other derivations; the first ones stay.
    other = TrainingLabelParams(pre_window=5, pre_window_unit="steps", positive_fraction=0.5)
    derive_and_store(any_store, ids, other, LABELS)
    relabelled = {**LABELS, "ep-b": "near_success"}
    _, n = derive_and_store(any_store, ids, params, relabelled)
    assert n == 3
    assert len(list_derivations(any_store, name=DERIVATION_NAME)) == 9
    assert load_training_labels(any_store, ids, params, LABELS) is not None
    # The raw episodes are untouched.
    assert any_store.read_episode("ep-a").control_source.tolist() == [P] * 12 + [H] * 6 + [RAMP] * 3 + [P] * 9


def test_blob_is_plain_npz_with_the_batch_figures(tmp_path) -> None:
    with Store.create(tmp_path / "s") as store:
        _add_batch(store)
        params = TrainingLabelParams(value_source="policy.value")
        labels, _ = derive_and_store(store, list(LABELS), params, LABELS)
        record = next(r for r in list_derivations(store, "ep-c") if r.name == DERIVATION_NAME)
        data = read_blob(store, record)
        inputs = batch_inputs(store, list(LABELS), LABELS)
        ep_c = next(e for e in labels.episodes if e.episode_id == "ep-c")
        assert encode_labels(labels, ep_c, inputs) == data  # same inputs, same bytes
        assert hashlib.sha256(data).hexdigest() == record.digest
        # What storage reads, by member name, with zipfile and numpy alone.
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = sorted(zf.namelist())
            meta = json.loads(zf.read("record.json"))
            improvement = np.load(io.BytesIO(zf.read("improvement.npy")), allow_pickle=False)
            value = np.load(io.BytesIO(zf.read("value_target.npy")), allow_pickle=False)
            assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert names == [
            "advantage.npy",
            "baseline.npy",
            "control_class.npy",
            "improvement.npy",
            "record.json",
            "value_estimate.npy",
            "value_target.npy",
        ]
        assert improvement.dtype == np.bool_ and value.dtype == np.float32 and value.shape == (25,)
        assert meta["format"] == "takeover.derivation/1" and meta["name"] == DERIVATION_NAME
        assert meta["value_source"] == "policy.value" and meta["outcome"] == "near_success"
        assert meta["threshold"] == labels.threshold and meta["batch_episodes"] == 3
        assert meta["input_digest"] == record.input_digest == inputs.input_digests()["ep-c"]
        assert meta["episode_digest"] == store.get_episode("ep-c").blob_digest
        _, back, baseline = decode_labels(data)
        np.testing.assert_array_equal(back.improvement, ep_c.improvement)
        np.testing.assert_array_equal(baseline, labels.baseline)
        # Smoothing of the same episode is another derivation beside it.
        smooth_and_store(store, "ep-a", SmoothingParams())
        assert sorted({r.name for r in list_derivations(store)}) == ["boundary_smoothing", DERIVATION_NAME]
        with pytest.raises(StorageError, match="not of 'training_labels'"):
            decode_labels(read_blob(store, list_derivations(store, name="boundary_smoothing")[0]))


def test_labels_must_be_given_for_every_episode(tmp_path) -> None:
    with Store.create(tmp_path / "s") as store:
        _add_batch(store)
        with pytest.raises(ValueError, match="no outcome label given for episode"):
            derive_and_store(store, ["ep-a", "ep-b"], TrainingLabelParams(), {"ep-a": "success"})
        with pytest.raises(ValueError, match="must be one of"):
            derive_and_store(store, ["ep-a"], TrainingLabelParams(), {"ep-a": "great"})
