"""Load a robomimic export with robomimic's own SequenceDataset and check what training would see.

Usage (in an environment with robomimic, not the project's own; robomimic 0.3.0 imports ``six``
without declaring it; this check needs robomimic's dataset code only, not torchvision):

    python3.11 -m venv rm-env
    rm-env/bin/pip install torch==2.13.0 robomimic==0.3.0 six
    rm-env/bin/python scripts/check_robomimic_export.py DIR

``DIR`` is the folder ``takeover data export TAG --format robomimic --out DIR`` wrote (or its
``demo.hdf5``). The check prints the file's metadata, sets robomimic's observation modalities up
(4-D uint8 observations are ``rgb``, the others ``low_dim``), derives the shape metadata as
robomimic's training script does, builds ``SequenceDataset`` with ``filter_by_attribute``
(``success`` unless ``--filter``), ``seq_length`` 10 and the low-dim cache, iterates it with a
shuffling torch DataLoader (batch size 8, 2 workers), checks every batch's keys, shapes and
padding, that each observation has the feature axis robomimic's BC indexes (``obs[k][:, 0, :]``),
that ``next_obs`` is ``obs`` one step on, that images process into channel-first floats in [0, 1],
and that the float observations and actions are finite; then it loads every other filter
key and compares the demos with the ones the file's attributes name. It prints a summary and exits
1 with one ``FAIL:`` line per problem. It does not import Takeover.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from export_check import Failures, first_line

DATASET_KEYS = ("actions", "rewards", "dones")


def describe(path: Path, failures: Failures) -> dict[str, Any]:
    """What the file holds, read with h5py: demos, their lengths and attributes, filter keys,
    observation keys with shapes, and the environment metadata robomimic's training reads."""
    import h5py
    import numpy as np

    with h5py.File(path, "r") as f:
        if "data" not in f:
            failures.add(f"{path.name} has no group data/")
            return {}
        data = f["data"]
        demos = sorted(data.keys(), key=lambda name: int(name[5:]) if name[5:].isdigit() else -1)
        bad = [name for name in demos if not (name.startswith("demo_") and name[5:].isdigit())]
        failures.check(not bad, f"data/ holds groups robomimic cannot index (it wants demo_<n>): {bad[:5]}")
        lengths = {name: int(data[name].attrs.get("num_samples", -1)) for name in demos}
        missing = [name for name, n in lengths.items() if n < 0]
        failures.check(not missing, f"demos without the attr num_samples: {missing[:5]}")
        total = int(data.attrs.get("total", -1))
        failures.check(total == sum(lengths.values()), f"data.attrs total {total} != {sum(lengths.values())}")
        env_meta: dict[str, Any] = {}
        if failures.check("env_args" in data.attrs, "data has no attr env_args (robomimic's train reads it)"):
            env_meta = json.loads(data.attrs["env_args"])
            for key in ("env_name", "type", "env_kwargs"):
                failures.check(key in env_meta, f"env_args has no {key!r}")
        masks = {
            key: [bytes(v).decode("utf-8") for v in np.asarray(f["mask"][key][()]).reshape(-1)]
            for key in (f["mask"].keys() if "mask" in f else [])
        }
        attrs = {name: {k: to_plain(v) for k, v in data[name].attrs.items()} for name in demos}
        first = data[demos[0]] if demos else None
        obs = {k: (tuple(v.shape[1:]), v.dtype.str) for k, v in first["obs"].items()} if first else {}
        actions = first["actions"].shape[1:] if first else ()
        for name in demos:
            for key in DATASET_KEYS:
                got = data[name][key].shape[0] if key in data[name] else None
                failures.check(got == lengths[name], f"{name}/{key}: {got} rows for {lengths[name]} samples")
            for group in ("obs", "next_obs"):
                for key in obs:
                    ds = data[name].get(f"{group}/{key}")
                    got = ds.shape[0] if ds is not None else None
                    failures.check(got == lengths[name], f"{name}/{group}/{key}: {got} rows")
        nonfinite = {
            key: [name for name in demos if not np.isfinite(data[name][f"obs/{key}"][()]).all()]
            for key, (_, dtype) in obs.items()
            if dtype[1] == "f"
        }
    return {
        "demos": demos,
        "lengths": lengths,
        "total": total,
        "env": env_meta,
        "masks": masks,
        "attrs": attrs,
        "obs": obs,
        "actions": tuple(actions),
        "nonfinite": {k: v for k, v in nonfinite.items() if v},
    }


def to_plain(value: Any) -> Any:
    """An HDF5 attribute as a Python value."""
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value


def print_description(info: dict[str, Any]) -> None:
    env = info["env"]
    print(
        f"demos          {len(info['demos'])}, {info['total']} samples; "
        f"lengths {list(info['lengths'].values())}"
    )
    print(
        f"env_args       env_name {env.get('env_name')!r} type {env.get('type')} "
        f"kwargs {env.get('env_kwargs')}"
    )
    print(f"actions        {info['actions']}")
    print("obs")
    for key, (shape, dtype) in info["obs"].items():
        print(f"  {key:28s} {dtype:5s} {shape}")
    print("mask")
    for key, names in info["masks"].items():
        print(f"  {key:28s} {names}")


def check_loader(
    path: Path, info: dict[str, Any], keys: list[str], args: argparse.Namespace, failures: Failures
) -> dict[str, Any]:
    """``SequenceDataset`` on the filter key through a shuffling DataLoader."""
    import robomimic.utils.obs_utils as obs_utils
    import torch
    from robomimic.utils.dataset import SequenceDataset
    from torch.utils.data import DataLoader

    chosen = info["masks"].get(args.filter)
    if not failures.check(chosen is not None, f"no filter key mask/{args.filter}"):
        return {}
    if not failures.check(bool(chosen), f"mask/{args.filter} names no demo: nothing to load"):
        return {}
    ds = SequenceDataset(
        hdf5_path=str(path),
        obs_keys=keys,
        dataset_keys=DATASET_KEYS,
        seq_length=args.seq_length,
        filter_by_attribute=args.filter,
        hdf5_cache_mode=args.cache_mode,
        get_pad_mask=True,
    )
    print(ds)
    expected = sum(info["lengths"][name] for name in chosen)
    failures.check(
        sorted(ds.demos) == sorted(chosen), f"SequenceDataset took {ds.demos}, mask says {sorted(chosen)}"
    )
    failures.check(len(ds) == expected, f"{len(ds)} sequences, expected one per sample: {expected}")
    loader = DataLoader(
        ds,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    t = args.seq_length
    samples = batches = 0
    for batch in loader:
        batches += 1
        n = len(batch["actions"])
        samples += n
        for key in (*DATASET_KEYS, "obs", "next_obs"):
            if key not in batch:
                failures.once(f"missing {key}", f"batches lack {key}")
        want = {"actions": (n, t, *info["actions"]), "rewards": (n, t), "dones": (n, t)}
        for key, shape in want.items():
            if key in batch and tuple(batch[key].shape) != shape:
                failures.once(
                    f"shape {key}", f"{key}: batch shape {tuple(batch[key].shape)}, expected {shape}"
                )
        for group in ("obs", "next_obs"):
            for key in keys:
                shape = (n, t, *info["obs"][key][0])
                got = tuple(batch[group][key].shape) if key in batch[group] else None
                if got != shape:
                    failures.once(
                        f"shape {group} {key}", f"{group}/{key}: batch shape {got}, expected {shape}"
                    )
        mask = batch["obs"]["pad_mask"][..., 0]
        if not torch.isfinite(batch["actions"]).all():
            failures.once("actions finite", "actions hold NaN or infinity")
        full = mask.all(dim=1)
        for key in keys:
            now, later = batch["obs"][key][full][:, 1:], batch["next_obs"][key][full][:, :-1]
            same = now == later
            if now.is_floating_point():
                same |= now.isnan() & later.isnan()
            if not bool(same.all()):
                failures.once(f"next {key}", f"next_obs/{key} is not obs/{key} one step on")
        for key in keys:
            # robomimic's BC, BCQ, CQL, IQL and TD3-BC take the first step of each sequence so.
            try:
                batch["obs"][key][:, 0, :]
            except IndexError:
                failures.once(
                    f"2d {key}",
                    f"obs/{key} has no feature axis (T,) and robomimic's BC takes obs[k][:, 0, :]: "
                    "store it as (T, 1)",
                )
        processed = obs_utils.process_obs_dict({k: batch["obs"][k] for k in keys})
        for key in keys:
            if obs_utils.key_is_obs_modality(key, "rgb"):
                img = processed[key]
                h, w, c = info["obs"][key][0]
                if tuple(img.shape) != (n, t, c, h, w) or img.dtype != torch.float32:
                    failures.once(f"rgb {key}", f"{key}: processed to {tuple(img.shape)} {img.dtype}")
                elif float(img.min()) < 0 or float(img.max()) > 1:
                    failures.once(f"rgb range {key}", f"{key}: processed pixels outside [0, 1]")
    failures.check(samples == expected, f"the DataLoader gave {samples} sequences, expected {expected}")
    return {"samples": samples, "batches": batches, "demos": len(ds.demos)}


def check_filters(path: Path, info: dict[str, Any], keys: list[str], failures: Failures) -> list[str]:
    """Every filter key loads the demos it names; the labels and intervention counts the demos
    carry as attributes agree with the filter keys they are in."""
    from robomimic.utils.dataset import SequenceDataset

    lines = []
    attrs = info["attrs"]
    for key, names in info["masks"].items():
        ds = SequenceDataset(
            hdf5_path=str(path),
            obs_keys=keys,
            dataset_keys=DATASET_KEYS,
            seq_length=1,
            filter_by_attribute=key,
            hdf5_cache_mode=None,
        )
        failures.check(sorted(ds.demos) == sorted(names), f"mask/{key}: loaded {ds.demos}, named {names}")
        lines.append(f"  {key:20s} {len(ds.demos)} demos, {len(ds)} samples")
        by_attr = None
        if key in ("success", "near_success", "failure"):
            by_attr = sorted(n for n, a in attrs.items() if a.get("label") == key)
        elif key == "has_intervention":
            by_attr = sorted(n for n, a in attrs.items() if int(a.get("interventions", 0)) > 0)
        if by_attr is not None and all("label" in a for a in attrs.values()):
            failures.check(
                by_attr == sorted(names), f"mask/{key} {sorted(names)} but the attrs say {by_attr}"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="the export folder (or its demo.hdf5)")
    parser.add_argument("--filter", default="success", help="filter key under mask/ to train on")
    parser.add_argument("--seq-length", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--cache-mode", default="low_dim", choices=["low_dim", "all", "none"])
    parser.add_argument("--obs-keys", nargs="*", help="observation keys to load (default: all)")
    args = parser.parse_args(argv)
    args.cache_mode = None if args.cache_mode == "none" else args.cache_mode
    path: Path = args.dir.expanduser().resolve()
    if path.is_dir():
        path = path / "demo.hdf5"
    if not path.is_file():
        print(f"FAIL: {path} does not exist: give the folder the export wrote")
        return 1
    started = time.monotonic()
    try:
        import robomimic
        import robomimic.utils.obs_utils as obs_utils
    except ImportError as exc:
        print(f"FAIL: robomimic cannot be imported here ({first_line(exc)}): see the usage at the top")
        return 1
    print(f"robomimic {robomimic.__version__}, Python {sys.version.split()[0]}")
    failures = Failures()
    info = describe(path, failures)
    if not info or not info["demos"]:
        print("FAIL: no demo to load")
        return 1
    print_description(info)
    keys = list(args.obs_keys or info["obs"])
    unknown = [k for k in keys if k not in info["obs"]]
    if unknown:
        print(f"FAIL: no such observation key(s) {unknown}; the file has {list(info['obs'])}")
        return 1
    rgb = [k for k in keys if len(info["obs"][k][0]) == 3 and info["obs"][k][1] == "|u1"]
    failures.check(bool(rgb), "no camera image among the observation keys (uint8 T x H x W x 3)")
    obs_utils.initialize_obs_utils_with_obs_specs(
        {"obs": {"low_dim": [k for k in keys if k not in rgb], "rgb": rgb}}
    )
    print("shape metadata (as robomimic's train derives it)")
    for key in sorted(keys):
        modality = obs_utils.OBS_KEYS_TO_MODALITIES[key]
        shape = obs_utils.get_processed_shape(obs_modality=modality, input_shape=info["obs"][key][0])
        print(f"  {key:28s} {modality:8s} {shape}")
    for key, demos in info["nonfinite"].items():
        if key in keys:
            failures.add(f"obs/{key} holds NaN or infinity in {len(demos)} demo(s), e.g. {demos[0]}")
    results = failures.run(
        [
            ("loader", lambda: check_loader(path, info, keys, args, failures)),
            ("filters", lambda: check_filters(path, info, keys, failures)),
        ]
    )
    print("filter keys")
    for line in results.get("filters") or []:
        print(line)
    got = results.get("loader") or {}
    print(
        f"summary        filter {args.filter!r}: {got.get('demos', 0)} demos, {got.get('samples', 0)} "
        f"sequences of {args.seq_length} in {got.get('batches', 0)} batches, cameras {rgb}; "
        f"checked in {time.monotonic() - started:.1f} s"
    )
    return failures.verdict("robomimic's SequenceDataset loads this export as training would")


if __name__ == "__main__":
    sys.exit(main())
