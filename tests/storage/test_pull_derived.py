"""`pull` keys of the training labels a version pins (``control_class``, ``value_target``,
``improvement``): read from the pinned blobs through the verified cache, with the version's step
ranges and windows; a version without the pin refuses them in one line naming the command."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from takeover.annotation.labels import relabel, version_labels
from takeover.annotation.training_params import TrainingLabelParams
from takeover.annotation.training_store import DERIVATION_NAME, TrainingLabelPins, decode_labels
from takeover.app.cli import main
from takeover.storage.blobs import LocalBlobStore
from takeover.storage.errors import CorruptBlobError
from takeover.storage.label_revisions import Label
from takeover.storage.pull import KeyChoiceError, pull
from takeover.storage.store import Store
from takeover.storage.testing import make_episode

PARAMS = TrainingLabelParams(pre_window=2, pre_window_unit="steps")
KEYS = ["control_class", "value_target", "improvement"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """v1: three episodes, no pins; v2: the same, a-ok relabelled failure, pinning training labels;
    v2-trim: v2 with steps 2..9 of a-ok, pinning its own."""
    r = tmp_path / "store"
    with Store.create(r) as st:
        st.add_episode(make_episode("a-ok", 12, seed=1))
        st.add_episode(make_episode("b-near", 9, seed=2, outcome="near_success", takeover_at=4))
        st.add_episode(make_episode("c-fail", 10, seed=3, outcome="failure", success=False, takeover_at=3))
        st.commit("v1")
        relabel(st, "a-ok", Label(outcome="failure"), annotator="bo")
        st.commit("v2", labels=version_labels(st), derived=TrainingLabelPins(st, PARAMS))
        st.commit("v2-trim", parent="v2", trim={"a-ok": (2, 10)}, derived=TrainingLabelPins(st, PARAMS))
    return r


def _stored(root: Path, tag: str) -> dict[str, dict[str, np.ndarray]]:
    """The whole-episode arrays of the labels ``tag`` pins, decoded by annotation."""
    with Store.open(root) as st:
        out = {}
        for e in st.resolve(tag).manifest.episodes:
            data = st.derived_blobs.get_bytes(dict(e.derivations)[DERIVATION_NAME])
            _, labels, _ = decode_labels(data)
            assert labels.outcome == e.outcome  # the version's label (a-ok's, relabelled)
            out[e.episode_id] = labels.arrays()
        return out


def test_derived_keys_are_the_pinned_labels_over_the_versions_ranges(root: Path, tmp_path: Path) -> None:
    stored = _stored(root, "v2-trim")
    ds = pull("v2-trim", root, tmp_path / "cache", keys=["state", *KEYS])
    assert len(ds) == 8 + 9 + 10
    seen: dict[str, list[int]] = {}
    for i in range(len(ds)):
        item = ds[i]
        assert sorted(item) == sorted(["state", *KEYS])
        ep, step = ds.locate(i)
        eid = ds.episodes[ep].episode_id
        seen.setdefault(eid, []).append(step)
        assert item["control_class"].shape == item["improvement"].shape == ()
        assert int(item["control_class"]) == int(stored[eid]["control_class"][step])
        assert float(item["value_target"]) == float(stored[eid]["value_target"][step])
        assert bool(item["improvement"]) == bool(stored[eid]["improvement"][step])
        assert (
            str(item["value_target"].dtype) == "torch.float32"
            and str(item["improvement"].dtype) == "torch.bool"
        )
        assert str(item["control_class"].dtype) == "torch.int64"
    assert seen["a-ok"] == list(range(2, 10)) and seen["c-fail"] == list(range(10))
    # DataLoader workers batch them as they are.
    batch = next(iter(DataLoader(ds, batch_size=len(ds), num_workers=2, multiprocessing_context="fork")))
    for key in KEYS:
        torch.testing.assert_close(batch[key], torch.stack([ds[i][key] for i in range(len(ds))]))
    # Human steps are positive; a failure's targets lie below -1 (the failure penalty).
    assert all(bool(stored["c-fail"]["improvement"][s]) for s in range(3, 10))
    assert (stored["a-ok"]["value_target"] < -1).all()


def test_windows_of_derived_keys_stop_at_the_range(root: Path, tmp_path: Path) -> None:
    stored = _stored(root, "v2-trim")["a-ok"]
    ds = pull("v2-trim", root, tmp_path / "cache", keys=["value_target"], deltas={"value_target": [-1, 0, 1]})
    first = ds[0]  # step 2 of a-ok: step 1 is outside the version's range
    assert first["value_target.pad"].tolist() == [True, False, False]
    np.testing.assert_array_equal(first["value_target"].numpy(), stored["value_target"][[2, 2, 3]])


def test_every_key_includes_the_derived_ones_only_where_pinned(root: Path, tmp_path: Path) -> None:
    pinned = pull("v2", root, tmp_path / "cache")
    assert set(KEYS) <= set(pinned[0])
    plain = pull("v1", root, tmp_path / "cache")
    assert not set(KEYS) & set(plain[0])


def test_a_key_of_a_version_without_the_pin_names_the_command(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(KeyChoiceError, match=r"no key improvement: version v1 pins no training labels: "):
        pull("v1", root, tmp_path / "cache", keys=["state", "improvement"])
    args = ["data", "pull", "v1", "--keys", "state,improvement", "--store", str(root)]
    assert main([*args, "--cache", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "`takeover annotate derive-labels v1 --commit NEW`" in err
    # What it says works: the new version offers the keys.
    assert main(["annotate", "derive-labels", "v1", "--commit", "v1-labels", "--store", str(root)]) == 0
    assert "tagged v1-labels -> version" in capsys.readouterr().out
    assert "improvement" in pull("v1-labels", root, tmp_path / "cache", keys=["improvement"])[0]


def test_pinned_blobs_come_through_the_verified_cache(root: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with Store.open(root) as st:
        pins = [dict(e.derivations)[DERIVATION_NAME] for e in st.resolve("v2").manifest.episodes]
        derived = st.derived_blobs
    ds = pull("v2", root, cache, keys=KEYS)
    assert ds.fetched.fetched == 6  # three episode files, three label blobs
    assert all(LocalBlobStore(cache).verify(d) for d in pins)
    want = [ds[i]["value_target"].item() for i in range(len(ds))]
    # A damaged cached copy is fetched again (verify="full" hashes it), with the same values.
    damaged = LocalBlobStore(cache).path(pins[0])
    os.chmod(damaged, 0o644)
    damaged.write_bytes(b"not a blob")
    again = pull("v2", root, cache, keys=KEYS, verify="full")
    assert [again[i]["value_target"].item() for i in range(len(again))] == want
    assert LocalBlobStore(cache).verify(pins[0])
    # Streaming gives the same.
    streamed = pull("v2", root, tmp_path / "other", keys=KEYS, stream=True)
    assert [streamed[i]["value_target"].item() for i in range(len(streamed))] == want
    # A damaged copy in the store is refused, not read.
    assert isinstance(derived, LocalBlobStore)
    bad = derived.path(pins[1])
    os.chmod(bad, 0o644)
    bad.write_bytes(b"not a blob either")
    with pytest.raises(CorruptBlobError, match="is corrupt"):
        pull("v2", root, tmp_path / "fresh", keys=KEYS)


def test_a_blob_holding_pickled_objects_is_refused_not_unpickled() -> None:
    import io
    import json
    import zipfile

    from takeover.storage.derived import DerivedError, read_blob

    buf, npy = io.BytesIO(), io.BytesIO()
    np.save(npy, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("record.json", json.dumps({"format": "takeover.derivation/1", "name": "training_labels"}))
        zf.writestr("value_target.npy", npy.getvalue())
    with pytest.raises(DerivedError, match=r"not a readable derivation blob: .*allow_pickle"):
        read_blob(buf.getvalue(), "training_labels")
    with pytest.raises(DerivedError, match="not a readable derivation blob"):
        read_blob(b"PK not a zip", "training_labels")
