"""Versions that pin the training labels of their episodes (SQLite, PostgreSQL, S3 blobs): each
entry pins the blob of the labels derived for the version's episodes with the version's labels;
versions without the pin keep their digests; children pin their own; gc keeps and fsck checks the
pinned blobs."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from sqlalchemy import delete

from takeover.annotation.derivation_catalog import derivations_table, list_derivations, read_blob
from takeover.annotation.labels import Rule, relabel, version_labels
from takeover.annotation.training_params import TrainingLabelParams
from takeover.annotation.training_store import (
    DERIVATION_NAME,
    TrainingLabelPins,
    decode_labels,
    load_training_labels,
)
from takeover.storage.derived import DerivedError, training_steps
from takeover.storage.errors import VersionChangeError
from takeover.storage.fsck import fsck
from takeover.storage.gc import collect_garbage
from takeover.storage.label_revisions import Label
from takeover.storage.manifest import Manifest, label_of
from takeover.storage.store import Store
from takeover.storage.testing import make_episode

PARAMS = TrainingLabelParams(pre_window=2, pre_window_unit="steps")


def _add_batch(store: Store) -> None:
    store.add_episode(make_episode("a-ok", 12, seed=1))
    store.add_episode(make_episode("b-near", 9, seed=2, outcome="near_success", takeover_at=4))
    store.add_episode(make_episode("c-fail", 10, seed=3, outcome="failure", success=False, takeover_at=3))
    store.add_episode(make_episode("d-ok", 8, seed=4))


def _pins(manifest: Manifest) -> dict[str, str]:
    return {e.episode_id: dict(e.derivations)[DERIVATION_NAME] for e in manifest.episodes}


def _unpinned_json(manifest: Manifest) -> str:
    obj = manifest.to_json()
    for e in obj["episodes"]:
        e.pop("derivations")
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_a_version_pins_the_labels_of_its_episodes_with_its_labels(any_store: Store) -> None:
    _add_batch(any_store)
    any_store.commit("v1", ["a-ok", "b-near", "c-fail"])
    relabel(any_store, "a-ok", Label(outcome="failure"), annotator="bo")
    pins = TrainingLabelPins(any_store, PARAMS, clock=lambda: 7.0)
    digest, manifest = any_store.commit(
        "v2", ["a-ok", "b-near", "c-fail"], labels=version_labels(any_store, Rule.LEAD), derived=pins
    )
    assert pins.created == 3 and pins.result is not None
    labels = {e.episode_id: label_of(e) for e in manifest.episodes}
    assert labels == {"a-ok": "failure", "b-near": "near_success", "c-fail": "failure"}
    # Each entry pins the blob of the labels derived for exactly this batch with these labels.
    stored = load_training_labels(any_store, list(labels), PARAMS, labels)
    assert stored is not None and stored.threshold == pins.result.threshold
    rows = {r.episode_id: r for r in list_derivations(any_store, name=DERIVATION_NAME)}
    assert _pins(manifest) == {i: rows[i].digest for i in labels}
    for entry in manifest.episodes:
        data = read_blob(any_store, rows[entry.episode_id])
        assert hashlib.sha256(data).hexdigest() == _pins(manifest)[entry.episode_id]
        record, episode, _ = decode_labels(data)
        assert record["outcome"] == label_of(entry) and record["batch_episodes"] == 3
        # What storage reads of it, without annotation: the same arrays in the pull and export types.
        _, steps = training_steps(data, entry)
        np.testing.assert_array_equal(steps["value_target"], episode.value_target)
        assert steps["control_class"].dtype == np.int64 and steps["improvement"].dtype == np.bool_
    # The pin is the only thing that differs from the same version without it.
    plain, plain_manifest = any_store.commit(
        "v2-plain", ["a-ok", "b-near", "c-fail"], labels=version_labels(any_store)
    )
    assert "derivations" not in plain_manifest.canonical_json()
    assert hashlib.sha256(_unpinned_json(manifest).encode()).hexdigest() == plain != digest
    assert any_store.resolve("v2").manifest == manifest
    # Committing the same again computes nothing: the batch is stored.
    again = TrainingLabelPins(any_store, PARAMS)
    _, same = any_store.commit(
        "v2-again", ["a-ok", "b-near", "c-fail"], labels=version_labels(any_store), derived=again
    )
    assert again.created == 0 and _pins(same) == _pins(manifest)


def test_versions_without_the_pin_keep_their_digests(any_store: Store) -> None:
    _add_batch(any_store)
    before, _ = any_store.commit("v1")
    # A version with pins in the store changes nothing for versions made without them.
    any_store.commit("v1-pinned", derived=TrainingLabelPins(any_store, PARAMS))
    after, manifest = any_store.commit("v1-again")
    assert after == before and "derivations" not in manifest.canonical_json()
    child, child_manifest = any_store.commit("v1-trim", parent="v1", trim={"a-ok": (1, 11)})
    assert "derivations" not in child_manifest.canonical_json()
    assert child == Manifest.from_json_text(child_manifest.canonical_json()).digest()


def test_children_pin_their_own_batch_and_never_the_parents(any_store: Store) -> None:
    _add_batch(any_store)
    _, parent = any_store.commit(
        "v1", ["a-ok", "b-near", "c-fail"], derived=TrainingLabelPins(any_store, PARAMS)
    )
    # Without pins asked for, a child keeps none: its batch is another.
    _, bare = any_store.commit("v2", parent="v1", add=["d-ok"])
    assert all(not e.derivations for e in bare.episodes)
    # With them, every entry pins the labels of the child's batch (four episodes, not three).
    pins = TrainingLabelPins(any_store, PARAMS)
    _, child = any_store.commit("v3", parent="v1", add=["d-ok"], trim={"a-ok": (2, 10)}, derived=pins)
    assert pins.created == 4 and set(_pins(child)) == {"a-ok", "b-near", "c-fail", "d-ok"}
    assert not set(_pins(child).values()) & set(_pins(parent).values())
    by_id = {e.episode_id: e for e in child.episodes}
    record, steps = training_steps(any_store.derived_blobs.get_bytes(_pins(child)["a-ok"]), by_id["a-ok"])
    assert record["batch_episodes"] == 4 and steps["value_target"].shape == (8,)  # steps 2..9 of 12
    # The episodes of v2 frozen again with their pins: labels and step ranges as they were. The
    # labels cover whole episodes, so they are v3's (trimmed, but of the same batch): not derived again.
    again_pins = TrainingLabelPins(any_store, PARAMS)
    _, again = any_store.pin_derived("v2-labels", "v2", again_pins, "with labels")
    assert [(e.episode_id, e.outcome, e.steps) for e in again.episodes] == [
        (e.episode_id, e.outcome, e.steps) for e in bare.episodes
    ]
    assert any_store.resolve("v2-labels").manifest.parent == any_store.resolve("v2").digest
    assert again_pins.created == 0 and _pins(again) == _pins(child)


def test_a_pin_for_another_episode_or_label_is_refused_on_read(any_store: Store) -> None:
    _add_batch(any_store)
    _, manifest = any_store.commit("v1", ["a-ok", "b-near"], derived=TrainingLabelPins(any_store, PARAMS))
    a, b = manifest.episodes
    data = any_store.derived_blobs.get_bytes(dict(a.derivations)[DERIVATION_NAME])
    with pytest.raises(DerivedError, match="derived for episode_id 'a-ok', not 'b-near'"):
        training_steps(data, b)
    from dataclasses import replace

    with pytest.raises(DerivedError, match="derived for outcome 'success', not 'failure'"):
        training_steps(data, replace(a, outcome="failure"))
    with pytest.raises(VersionChangeError, match="no derived blob digest given for episode a-ok"):
        any_store.commit("v2", ["a-ok"], derived=lambda entries: {})


def test_gc_keeps_and_fsck_checks_the_pinned_blobs(any_store: Store) -> None:
    _add_batch(any_store)
    _, manifest = any_store.commit("v1", ["a-ok", "b-near"], derived=TrainingLabelPins(any_store, PARAMS))
    pinned = set(_pins(manifest).values())
    # Without their catalog rows the pinned blobs are still referenced: by the version.
    with any_store.catalog.engine.begin() as conn:
        conn.execute(delete(derivations_table))
    assert pinned <= any_store.catalog.references().digests
    report = collect_garbage(any_store, retention_s=0, grace_s=0, now=1e12)
    assert not pinned & {r.digest for r in report.removals}
    assert fsck(any_store).clean
    # A pinned blob gone is a problem fsck names.
    gone = _pins(manifest)["b-near"]
    any_store.derived_blobs.remove(gone)
    lines = [p.line() for p in fsck(any_store).problems]
    assert any(
        f"episode b-near: the derived blob of training_labels it pins ({gone[:12]}) is missing" in line
        for line in lines
    ), lines
