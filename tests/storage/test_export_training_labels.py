"""Every export of a version with relabelled episodes and pinned training labels carries the same
labels and the same per-step derived values (``control_class``, ``value_target``,
``improvement``), read back with each format's own reader (pyarrow, h5py, zarr) and equal to what
`pull` gives; a version without the pin exports as before (only the derived columns differ, as
the golden file lists)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest
import zarr

from takeover.annotation.labels import Rule, relabel, version_labels
from takeover.annotation.training_params import TrainingLabelParams
from takeover.annotation.training_store import TrainingLabelPins
from takeover.app.cli import main
from takeover.storage.label_revisions import Label
from takeover.storage.pull import pull
from takeover.storage.store import Store
from takeover.storage.testing import make_episode

GOLDEN = Path(__file__).with_name("golden") / "training_labels_layout.json"
KEYS = ("control_class", "value_target", "improvement")
DTYPES = {"control_class": np.int64, "value_target": np.float32, "improvement": np.bool_}
FORMATS = ("lerobot", "robomimic", "zarr")
LABELS = {"a-ok": "failure", "b-near": "success", "c-fail": "failure"}
"""The labels v2 gives: a-ok and b-near relabelled by annotators."""


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """v2-trim (a-ok's steps 2..9, labels resolved, training labels pinned) and v2-trim-plain (the
    same without the pin), each exported in every format; and what `pull` gives of v2-trim."""
    tmp = tmp_path_factory.mktemp("exports")
    root = tmp / "store"
    cams: dict[str, Any] = {"cameras": ("front",), "image_size": (16, 24)}
    with Store.create(root) as st:
        st.add_episode(make_episode("a-ok", 12, seed=1, **cams))
        st.add_episode(make_episode("b-near", 9, seed=2, outcome="near_success", takeover_at=4, **cams))
        st.add_episode(
            make_episode("c-fail", 10, seed=3, outcome="failure", success=False, takeover_at=3, **cams)
        )
        st.commit("v1")
        relabel(st, "a-ok", Label(outcome="failure", failure_category="collision"), annotator="bo")
        relabel(st, "b-near", Label(outcome="success"), annotator="di", role="lead")
        params = TrainingLabelParams(pre_window=2, pre_window_unit="steps")
        st.commit("v2", labels=version_labels(st, Rule.LEAD), derived=TrainingLabelPins(st, params))
        st.commit("v2-trim", parent="v2", trim={"a-ok": (2, 10)}, derived=TrainingLabelPins(st, params))
        st.commit("v2-trim-plain", parent="v2", trim={"a-ok": (2, 10)})
    out: dict[str, Any] = {"root": root}
    for tag in ("v2-trim", "v2-trim-plain"):
        for fmt in FORMATS:
            folder = tmp / f"{tag}-{fmt}"
            argv = ["data", "export", tag, "--format", fmt, "--out", str(folder), "--store", str(root)]
            assert main(argv) == 0
            out[tag, fmt] = folder
    ds = pull("v2-trim", root, tmp / "cache", keys=[*KEYS, "step_index"])
    pulled: dict[str, dict[str, list[Any]]] = {}
    for i in range(len(ds)):
        item = ds[i]
        eid = ds.episodes[int(ds.locate(i)[0])].episode_id
        for key in KEYS:
            pulled.setdefault(eid, {}).setdefault(key, []).append(item[key].item())
    out["pulled"] = {e: {k: np.array(v, dtype=DTYPES[k]) for k, v in d.items()} for e, d in pulled.items()}
    return out


def _lerobot(folder: Path) -> tuple[dict[str, str], dict[str, dict[str, np.ndarray]]]:
    episodes = pq.read_table(folder / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    data = pq.read_table(folder / "data/chunk-000/file-000.parquet")
    index = np.asarray(data.column("episode_index"))
    columns = {k: np.asarray(data.column(k).to_numpy(zero_copy_only=False)) for k in KEYS}
    labels = {e["episode_id"]: e["label"] for e in episodes}
    steps = {e["episode_id"]: {k: columns[k][index == e["episode_index"]] for k in KEYS} for e in episodes}
    return labels, steps


def _robomimic(folder: Path) -> tuple[dict[str, str], dict[str, dict[str, np.ndarray]]]:
    labels, steps = {}, {}
    with h5py.File(folder / "demo.hdf5", "r") as f:
        for name in f["data"]:
            g = f["data"][name]
            eid = g.attrs["episode_id"]
            labels[eid] = g.attrs["label"]
            steps[eid] = {}
            for k in KEYS:
                obs, nxt = g[f"obs/{k}"][()], g[f"next_obs/{k}"][()]
                assert obs.shape == (g.attrs["num_samples"], 1)  # (T, 1), as robomimic's low-dim obs
                np.testing.assert_array_equal(nxt[:-1], obs[1:])
                steps[eid][k] = obs[:, 0]
    return labels, steps


def _zarr(folder: Path) -> tuple[dict[str, str], dict[str, dict[str, np.ndarray]]]:
    root = zarr.open_group(str(folder / "replay_buffer.zarr"), mode="r")
    ids = [str(i) for i in root["meta/episode_id"][:]]
    ends = root["meta/episode_ends"][:]
    starts = np.concatenate([[0], ends[:-1]])
    columns = {k: root[f"data/{k}"][:] for k in KEYS}
    labels = dict(zip(ids, (str(x) for x in root["meta/episode_label"][:]), strict=True))
    steps = {i: {k: columns[k][a:b] for k in KEYS} for i, a, b in zip(ids, starts, ends, strict=True)}
    return labels, steps


READERS = {"lerobot": _lerobot, "robomimic": _robomimic, "zarr": _zarr}


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_export_carries_the_labels_and_the_derived_values_pull_gives(
    exported: dict[str, Any], fmt: str
) -> None:
    labels, steps = READERS[fmt](exported["v2-trim", fmt])
    assert labels == LABELS
    pulled = exported["pulled"]
    assert set(steps) == set(pulled) == set(LABELS)
    for eid, want in pulled.items():
        for key in KEYS:
            got = steps[eid][key]
            assert got.dtype == DTYPES[key], (fmt, key, got.dtype)
            np.testing.assert_array_equal(got, want[key], err_msg=f"{fmt} {eid} {key}")
    assert len(steps["a-ok"]["value_target"]) == 8  # the version's step range of a-ok
    provenance = json.loads((exported["v2-trim", fmt] / "provenance.json").read_text())
    figures = provenance["training_labels"]
    assert figures["batch_episodes"] == 3 and figures["params"]["pre_window_unit"] == "steps"
    # Without the pin: the same labels, no derived values, nothing about them in the provenance.
    plain = exported["v2-trim-plain", fmt]
    assert "training_labels" not in json.loads((plain / "provenance.json").read_text())
    if fmt == "robomimic":
        with h5py.File(plain / "demo.hdf5", "r") as f:
            assert not set(KEYS) & set(f["data/demo_0/obs"])


def test_the_exports_agree_with_each_other(exported: dict[str, Any]) -> None:
    read = {fmt: READERS[fmt](exported["v2-trim", fmt]) for fmt in FORMATS}
    figures = {
        fmt: json.loads((exported["v2-trim", fmt] / "provenance.json").read_text())["training_labels"]
        for fmt in FORMATS
    }
    first = read["lerobot"]
    for fmt in FORMATS[1:]:
        assert read[fmt][0] == first[0]
        for eid in LABELS:
            for key in KEYS:
                np.testing.assert_array_equal(read[fmt][1][eid][key], first[1][eid][key])
        assert figures[fmt] == figures["lerobot"]
    stats = json.loads((exported["v2-trim", "lerobot"] / "meta" / "stats.json").read_text())
    values = np.concatenate([first[1][e]["value_target"] for e in LABELS])
    np.testing.assert_allclose(stats["value_target"]["mean"], [values.mean()], rtol=1e-6)
    info = json.loads((exported["v2-trim", "lerobot"] / "meta" / "info.json").read_text())
    assert {k: info["features"][k]["dtype"] for k in KEYS} == {
        "control_class": "int64",
        "value_target": "float32",
        "improvement": "bool",
    }


def _flat(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        return {k: v for key, value in obj.items() for k, v in _flat(value, f"{prefix}{key}/").items()}
    return {prefix.rstrip("/"): obj}


def _layout(folder: Path) -> dict[str, Any]:
    """Files, parquet columns, HDF5 datasets, zarr arrays and LeRobot's features: the on-disk shape."""
    out: dict[str, Any] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.suffix == ".parquet":
            out[rel] = {f.name: str(f.type) for f in pq.read_schema(path)}
        elif path.name == ".zarray":
            a = json.loads(path.read_text())
            out[path.parent.relative_to(folder).as_posix()] = f"{a['dtype']} {a['shape']}"
        elif path.suffix == ".hdf5":
            with h5py.File(path, "r") as f:
                names: list[str] = []
                f.visit(names.append)
                for name in names:
                    if isinstance(f[name], h5py.Dataset):
                        out[f"{rel}/{name}"] = f"{f[name].dtype.str} {list(f[name].shape)}"
        elif path.name == "info.json":
            out[rel] = {
                k: [v["dtype"], v["shape"]] for k, v in json.loads(path.read_text())["features"].items()
            }
        elif path.is_file() and path.name != "provenance.json" and not path.name.startswith(".z"):
            out[rel] = "file"
    return out


def test_the_pin_adds_the_derived_columns_and_changes_nothing_else(exported: dict[str, Any]) -> None:
    added: dict[str, dict[str, Any]] = {}
    for fmt in FORMATS:
        pinned = _flat(_layout(exported["v2-trim", fmt]))
        plain = _flat(_layout(exported["v2-trim-plain", fmt]))
        assert {k: v for k, v in plain.items() if pinned.get(k) != v} == {}, fmt
        added[fmt] = {k: v for k, v in pinned.items() if k not in plain}
    if os.environ.get("TAKEOVER_WRITE_GOLDEN"):
        GOLDEN.write_text(json.dumps(added, indent=1, sort_keys=True) + "\n")
    assert added == json.loads(GOLDEN.read_text())
