"""Load a LeRobot v3.0 export with LeRobot's own reader and check what a training job would see.

Usage (in a Python 3.12 environment with LeRobot, not the project's own):

    python3.12 -m venv lerobot-env
    lerobot-env/bin/pip install 'lerobot[dataset]==0.6.1'
    lerobot-env/bin/python scripts/check_lerobot_export.py DIR

``DIR`` is the folder ``takeover data export TAG --format lerobot --out DIR`` wrote. The check runs
offline (``HF_HUB_OFFLINE=1``): it loads ``LeRobotDataset(repo_id="local/<name>", root=DIR)``,
prints the metadata, iterates every sample with a shuffling torch DataLoader (batch size 8, 2
workers) checking each batch's keys, shapes and dtypes against ``meta/info.json``, decodes the
frames of every camera, checks ``timestamp == frame_index / fps``, loads a window with
``delta_timestamps``, and selects episodes with ``episode_filter=`` on the per-episode columns
Takeover adds (``label``, ``interventions``; ``--plain`` skips those for a dataset LeRobot wrote
itself), comparing the selection with the episodes table read by pyarrow. It prints a short summary
and exits 1 with one ``FAIL:`` line per problem. It does not import Takeover.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from export_check import Failures, first_line

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

# The dtype LeRobot's loader hands out per feature dtype. float64 comes out as float32: the loader
# makes tensors with torch.tensor() of Python floats (torch's default dtype).
TORCH_DTYPES = {"float32": "torch.float32", "float64": "torch.float32", "int64": "torch.int64"}
TORCH_DTYPES |= {"int32": "torch.int32", "bool": "torch.bool", "video": "torch.float32"}
TORCH_DTYPES |= {"image": "torch.float32", "uint8": "torch.uint8"}


def expected_shape(feature: dict[str, Any]) -> tuple[int, ...]:
    """The shape of one sample of ``feature`` as LeRobot returns it: cameras channel-first,
    ``(1,)`` features as scalars."""
    shape = tuple(feature["shape"])
    if feature["dtype"] in ("video", "image"):
        names = list(feature.get("names") or ["height", "width", "channels"])
        if names[:3] == ["channels", "height", "width"]:
            return shape
        return (shape[2], shape[0], shape[1])
    if shape == (1,):
        return ()
    return shape


def video_backend(choice: str | None) -> str:
    """``choice``, else torchcodec when it loads here, else pyav (said in one line instead of
    LeRobot's long warning)."""
    if choice:
        return choice
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            importlib.import_module("torchcodec.decoders")
        return "torchcodec"
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"note: torchcodec cannot be used here ({first[:100]}); decoding with pyav")
        return "pyav"


def read_episodes_table(root: Path) -> list[dict[str, Any]]:
    """The rows of ``meta/episodes`` read by pyarrow (not by LeRobot), stats columns left out."""
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for path in sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet")):
        table = pq.read_table(path)
        keep = [name for name in table.column_names if not name.startswith("stats/")]
        rows.extend(table.select(keep).to_pylist())
    return sorted(rows, key=lambda row: row["episode_index"])


def read_tasks(root: Path) -> dict[int, str]:
    """task_index -> task from ``meta/tasks.parquet`` read by pyarrow."""
    import pyarrow.parquet as pq

    rows = pq.read_table(root / "meta" / "tasks.parquet").to_pylist()
    return {int(row["task_index"]): str(row["task"]) for row in rows}


def check_stats(ds: Any, failures: Failures) -> None:
    """Normalisation statistics for every feature a policy normalises, in LeRobot's shapes."""
    stats = ds.meta.stats
    if not failures.check(stats is not None, "meta/stats.json is missing: policies normalise with it"):
        return
    for name, ft in ds.meta.features.items():
        if name in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
            continue
        if not failures.check(name in stats, f"meta/stats.json has no entry for {name}"):
            continue
        shape = tuple(ft["shape"])
        if ft["dtype"] in ("video", "image"):
            shape = (expected_shape(ft)[0], 1, 1)
        for stat in ("min", "max", "mean", "std"):
            got = tuple(stats[name][stat].shape) if stat in stats[name] else None
            failures.check(got == shape, f"meta/stats.json {name}/{stat}: shape {got}, expected {shape}")


def print_meta(ds: Any) -> None:
    meta = ds.meta
    print(f"repo_id        {ds.repo_id}")
    print(f"root           {ds.root}")
    print(f"codebase       {meta.info.codebase_version}   robot_type {meta.robot_type}")
    print(f"fps            {meta.fps}")
    print(
        f"totals         episodes {meta.total_episodes}  frames {meta.total_frames}  tasks {meta.total_tasks}"
    )
    print("features")
    for name, ft in meta.features.items():
        info = ft.get("info") or {}
        extra = ""
        if ft["dtype"] == "video":
            extra = f"  {info.get('video.codec')} {info.get('video.pix_fmt')} {info.get('video.fps')} fps"
        print(f"  {name:32s} {ft['dtype']:8s} {tuple(ft['shape'])}{extra}")
    wide = [name for name, ft in meta.features.items() if ft["dtype"] == "float64"]
    if wide:
        print(f"note: LeRobot hands these float64 features out as float32: {', '.join(wide)}")
    print(f"episodes table {', '.join(meta.episodes.column_names)}")
    tasks = meta.tasks
    print(f"tasks          {dict(zip(tasks.index, tasks['task_index'], strict=True))}")


def check_videos(ds: Any, root: Path, failures: Failures) -> None:
    """Each camera's episodes tile their mp4 files: one frame per sample at ``k / fps``, episode
    ``e`` from ``from_timestamp`` for ``length / fps`` seconds, the next one starting where it ends
    (a segment off by a whole frame would decode the wrong frames within LeRobot's tolerance)."""
    import av

    meta = ds.meta
    fps = meta.fps
    rows = read_episodes_table(root)
    for key in meta.video_keys:
        files: dict[tuple[int, int], list[dict[str, Any]]] = {}
        for row in rows:
            place = (row[f"videos/{key}/chunk_index"], row[f"videos/{key}/file_index"])
            files.setdefault(place, []).append(row)
        for (chunk, file), members in sorted(files.items()):
            path = root / meta.video_path.format(video_key=key, chunk_index=chunk, file_index=file)
            name = f"{key} chunk {chunk} file {file}"
            if not failures.check(path.is_file(), f"{name}: {path.relative_to(root)} is missing"):
                continue
            members.sort(key=lambda r: r[f"videos/{key}/from_timestamp"])
            start = 0.0
            for row in members:
                begin = row[f"videos/{key}/from_timestamp"]
                end = row[f"videos/{key}/to_timestamp"]
                ep = row["episode_index"]
                failures.check(
                    abs(begin - start) < 1e-4,
                    f"{name}: episode {ep} starts at {begin:.4f} s, the one before ends at {start:.4f} s",
                )
                failures.check(
                    abs((end - begin) - row["length"] / fps) < 1e-4,
                    f"{name}: episode {ep} spans {end - begin:.4f} s for {row['length']} frames at {fps} fps",
                )
                start = end
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                base = stream.time_base
                if base is None:
                    failures.add(f"{name}: the video stream has no time base")
                    continue
                times = [float(f.pts * base) for f in container.decode(stream) if f.pts is not None]
            count = sum(r["length"] for r in members)
            failures.check(len(times) == count, f"{name}: {len(times)} frames for {count} samples")
            off = max((abs(t - k / fps) for k, t in enumerate(times)), default=0.0)
            failures.check(off < 1e-4, f"{name}: frame times depart from k / fps by up to {off:.4f} s")


def check_batches(ds: Any, root: Path, args: argparse.Namespace, failures: Failures) -> dict[str, Any]:
    """Every sample once through a shuffling DataLoader; keys, shapes, dtypes and timestamps."""
    import torch
    from torch.utils.data import DataLoader

    meta = ds.meta
    features = meta.features
    expected = {name: expected_shape(ft) for name, ft in features.items()}
    wanted = set(features) | {"task"}
    fps = meta.fps
    loader = DataLoader(
        ds,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    task_names = read_tasks(root)
    episode_tasks = {row["episode_index"]: list(row["tasks"]) for row in read_episodes_table(root)}
    seen: list[int] = []
    nonfinite: set[str] = set()
    frames = dict.fromkeys(meta.video_keys, 0)
    batches = 0
    for batch in loader:
        batches += 1
        n = len(batch["index"])
        missing = wanted - set(batch)
        if missing:
            failures.once("missing", f"batch {batches} lacks {sorted(missing)}")
        for name, shape in expected.items():
            if name not in batch:
                continue
            value = batch[name]
            got = tuple(value.shape)
            if got != (n, *shape):
                failures.once(f"shape {name}", f"{name}: batch shape {got}, expected {(n, *shape)}")
            if value.is_floating_point() and not bool(value.isfinite().all()):
                if name.startswith(("observation", "action")):
                    failures.once(f"finite {name}", f"{name} holds NaN or infinity: a policy input or target")
                else:
                    nonfinite.add(name)
            want_dtype = TORCH_DTYPES.get(features[name]["dtype"])
            if want_dtype and str(value.dtype) != want_dtype:
                failures.once(f"dtype {name}", f"{name}: dtype {value.dtype}, expected {want_dtype}")
        for key in meta.video_keys:
            if key in batch:
                pixels = batch[key]
                frames[key] += len(pixels)
                if pixels.min() < 0 or pixels.max() > 1:
                    failures.once(f"range {key}", f"{key}: decoded pixels outside [0, 1]")
        for ep, index, text in zip(
            batch["episode_index"], batch["task_index"], batch.get("task", []), strict=False
        ):
            if text != task_names.get(int(index)) or text not in episode_tasks.get(int(ep), []):
                failures.once("task", f"sample of episode {int(ep)}: task {text!r} is not its task in meta/")
        drift = (batch["timestamp"].double() - batch["frame_index"].double() / fps).abs().max()
        if drift > 1e-4:
            failures.once(
                "timestamp", f"timestamp differs from frame_index / fps by up to {float(drift):.6f} s"
            )
        seen.extend(int(i) for i in batch["index"])
    failures.check(
        sorted(seen) == list(range(meta.total_frames)),
        f"the loader gave {len(seen)} samples ({len(set(seen))} distinct), "
        f"expected each of {meta.total_frames} once",
    )
    if nonfinite:
        # LeRobot policies take observation.* as inputs and action* as targets, and skip the rest.
        print(f"note: NaN or infinity in {', '.join(sorted(nonfinite))} (no policy input or target)")
    for key, count in frames.items():
        failures.check(
            count == meta.total_frames, f"{key}: decoded {count} frames, expected {meta.total_frames}"
        )
    return {"samples": len(seen), "batches": batches, "frames": frames}


def check_window(ds_class: Any, root: Path, repo_id: str, backend: str, failures: Failures) -> None:
    """A window of the next 4 actions at the first and last frame of each episode: shape and
    padding at the episode's end, as policies with action chunks load them."""
    import torch

    fps = read_info(root)["fps"]
    deltas = [k / fps for k in range(4)]
    ds = ds_class(repo_id=repo_id, root=root, video_backend=backend, delta_timestamps={"action": deltas})
    action_dim = tuple(ds.meta.features["action"]["shape"])
    for row in read_episodes_table(root):
        first, last = row["dataset_from_index"], row["dataset_to_index"] - 1
        for idx, pads in ((first, [False, False, False, False]), (last, [False, True, True, True])):
            if row["length"] < 4 and idx == first:
                continue
            item = ds[idx]
            failures.check(
                tuple(item["action"].shape) == (4, *action_dim),
                f"action window at index {idx}: shape {tuple(item['action'].shape)}",
            )
            got = item["action_is_pad"].tolist()
            failures.check(got == pads, f"action window at index {idx}: padding {got}, expected {pads}")
            if idx == last:
                same = torch.equal(item["action"][1], item["action"][0])
                failures.check(same, f"action window at index {idx}: padded actions are not the last one")


def check_filters(
    ds_class: Any, root: Path, repo_id: str, backend: str, args: argparse.Namespace, failures: Failures
) -> list[str]:
    """``episode_filter=`` on per-episode columns gives the episodes the table says, with their
    frames and nothing else."""
    rows = read_episodes_table(root)
    columns = set(rows[0]) if rows else set()
    median = sorted(r["length"] for r in rows)[len(rows) // 2]
    filters: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
        (f"length >= {median}", lambda ep: ep["length"] >= median)
    ]
    if not args.plain:
        label, count = args.label_column, args.interventions_column
        for column in (label, count):
            failures.check(column in columns, f"the episodes table has no column {column!r} to select on")
        if label in columns:
            filters.append((f'{label} == "success"', lambda ep: ep[label] == "success"))
            filters.append((f'{label} != "success"', lambda ep: ep[label] != "success"))
        if count in columns:
            filters.append((f"{count} > 0", lambda ep: ep[count] > 0))
            filters.append((f"{count} == 0", lambda ep: ep[count] == 0))
    lines = []
    for text, predicate in filters:
        expected = [r["episode_index"] for r in rows if predicate(r)]
        if not expected:
            lines.append(f"  {text:28s} no episode (LeRobot refuses an empty selection; not loaded)")
            continue
        try:
            ds = ds_class(repo_id=repo_id, root=root, video_backend=backend, episode_filter=predicate)
        except Exception as exc:
            failures.add(f"episode_filter {text}: {type(exc).__name__}: {first_line(exc)}")
            continue
        frames = sum(r["length"] for r in rows if r["episode_index"] in set(expected))
        failures.check(
            list(ds.episodes) == expected, f"episode_filter {text}: got {ds.episodes}, expected {expected}"
        )
        failures.check(len(ds) == frames, f"episode_filter {text}: {len(ds)} samples, expected {frames}")
        episodes = {int(ds[i]["episode_index"]) for i in (0, len(ds) - 1)}
        failures.check(episodes <= set(expected), f"episode_filter {text}: a sample of episode {episodes}")
        lines.append(f"  {text:28s} episodes {expected} ({frames} samples)")
    if (
        not args.plain
        and args.interventions_column in columns
        and "intervention" in read_info(root)["features"]
    ):
        check_interventions(root, rows, args.interventions_column, failures)
    return lines


def read_info(root: Path) -> dict[str, Any]:
    """``meta/info.json`` as written."""
    info: dict[str, Any] = json.loads((root / "meta" / "info.json").read_text())
    return info


def check_interventions(root: Path, rows: list[dict[str, Any]], column: str, failures: Failures) -> None:
    """An episode counts interventions exactly when some of its frames say ``intervention``."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    flagged: set[int] = set()
    for path in sorted((root / "data").glob("chunk-*/file-*.parquet")):
        table = pq.read_table(path, columns=["episode_index", "intervention"])
        hits = table.filter(pc.equal(table["intervention"], True))
        flagged |= {int(i) for i in hits["episode_index"].to_pylist()}
    counted = {r["episode_index"] for r in rows if r[column] > 0}
    failures.check(
        counted == flagged,
        f"episodes with {column} > 0 {sorted(counted)} differ from those with "
        f"intervention frames {sorted(flagged)}",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="the export folder (with meta/info.json)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--video-backend", default=None, help="torchcodec or pyav (default: what loads)")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--interventions-column", default="interventions")
    parser.add_argument(
        "--plain", action="store_true", help="a dataset without Takeover's per-episode columns"
    )
    args = parser.parse_args(argv)
    root: Path = args.dir.expanduser().resolve()
    if not (root / "meta" / "info.json").is_file():
        print(f"FAIL: {root} has no meta/info.json: give the folder the export wrote")
        return 1
    logging.basicConfig(level=logging.ERROR)
    # Progress bars are off (HF_DATASETS_DISABLE_PROGRESS_BARS); LeRobot asks to turn them back on.
    warnings.filterwarnings("ignore", message="Cannot enable progress bars")
    started = time.monotonic()
    try:
        import lerobot
        from lerobot.datasets.lerobot_dataset import LeRobotDataset
    except ImportError as exc:
        print(f"FAIL: LeRobot is not installed here ({first_line(exc)}): see the usage at the top")
        return 1
    print(f"LeRobot {lerobot.__version__}, Python {sys.version.split()[0]}")
    backend = video_backend(args.video_backend)
    repo_id = f"local/{root.name}"
    failures = Failures()
    try:
        ds = LeRobotDataset(repo_id=repo_id, root=root, video_backend=backend)
    except Exception as exc:
        print(f"FAIL: LeRobot could not load {root}: {type(exc).__name__}: {first_line(exc)}")
        return 1
    print_meta(ds)
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("stats", lambda: check_stats(ds, failures)),
        ("videos", lambda: check_videos(ds, root, failures)),
        ("iterate", lambda: check_batches(ds, root, args, failures)),
        ("window", lambda: check_window(LeRobotDataset, root, repo_id, backend, failures)),
        ("filters", lambda: check_filters(LeRobotDataset, root, repo_id, backend, args, failures)),
    ]
    results = failures.run(steps)
    seconds = time.monotonic() - started
    print("episode_filter")
    for line in results.get("filters") or []:
        print(line)
    it = results.get("iterate") or {}
    cameras = ", ".join(f"{k.rsplit('.', 1)[-1]} {v}" for k, v in (it.get("frames") or {}).items())
    print(
        f"summary        samples {it.get('samples', 0)} in {it.get('batches', 0)} batches, "
        f"episodes {ds.meta.total_episodes}, {ds.meta.total_frames / ds.meta.fps:.1f} s of data, "
        f"frames decoded: {cameras or 'no cameras'}; checked in {seconds:.1f} s"
    )
    return failures.verdict("LeRobot loads this dataset as a training job would")


if __name__ == "__main__":
    sys.exit(main())
