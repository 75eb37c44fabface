"""Export speed and size: each format and codec of `takeover data export`, for one version of 20
recorded episodes with 2 cameras.

Prints, per variant: wall time, episodes per minute, MB/s (of recorded camera JPEGs and state read,
and of export written), the export's size, and its size per hour of recording, as a ratio to the
recorded store's own size per hour (JPEG frames).

Sources:
- ``--source sim`` (default): the episodes are recorded here by ``takeover run --headless
  --operator scripted`` on the simulated Meta-World station (2 cameras, 224x168, the scripted
  operator taking over), through the real recorder, in real time (unpaced, the loop outruns the
  free-running cameras and an attempt can end with no frame at all);
- ``--source synthetic``: 640x480 JPEG frames at quality 90 (gradients, sines and noise, ~66 KB
  each, as ``bench/pull.py`` makes them), one per step per camera, at 20 Hz.

Run: ``python bench/export.py [--source sim|synthetic] [--episodes 20] [--steps 150] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from takeover.app.cli import main
from takeover.app.cli.data_export import FORMATS
from takeover.storage.schema import CameraStream
from takeover.storage.store import Store
from takeover.storage.testing import frames_in_a_log, make_episode

RATE = 20
VARIANTS: list[tuple[str, list[str]]] = [
    ("lerobot", ["--codec", "av1"]),
    ("lerobot", ["--codec", "h264"]),
    ("robomimic", []),
    ("zarr", []),
    ("zarr", ["--videos", "--codec", "h264"]),
    ("zarr", ["--videos", "--codec", "av1"]),
]


def record_sim(store: Path, episodes: int, steps: int) -> None:
    """Episodes recorded by the real loop and recorder on the simulated station."""
    takeover = [sys.executable, "-m", "takeover.app.cli"]
    subprocess.run([*takeover, "data", "init", "--store", str(store)], check=True, stdout=subprocess.DEVNULL)
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    run = [*takeover, "run", "--headless", "--operator", "scripted", "--store", str(store)]
    subprocess.run([*run, "--episodes", str(episodes), "--max-steps", str(steps)], check=True, env=env)


def synthetic(store: Path, episodes: int, steps: int, tmp: Path) -> None:
    """640x480 JPEGs (from bench/pull.py's maker), one per camera per step."""
    sys.path.insert(0, str(Path(__file__).parent))
    from pull import realistic_frames  # type: ignore[import-not-found]

    pool = realistic_frames(48, seed=1)
    with Store.create(store) as st:
        for e in range(episodes):
            ep = make_episode(
                f"ep{e:03d}", steps, seed=e, cameras=(), state_dim=14, action_dim=7, takeover_at=steps // 2
            )
            ep.meta = replace(ep.meta, rate_hz=float(RATE))
            ep.timestamps = ep.timestamps[0] + np.arange(steps) / RATE
            for ci, cam in enumerate(("front", "wrist")):
                frames = [pool[(e * 31 + ci * 17 + s) % len(pool)] for s in range(steps)]
                every = np.arange(steps, dtype=np.int64)
                ep.cameras[cam] = CameraStream(cam, frames, ep.timestamps + 0.004, every, 480, 640)
                frames_in_a_log(ep, cam, tmp / f"{ep.meta.episode_id}-{cam}.log")
            st.add_episode(ep)


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main_bench() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", choices=("sim", "synthetic"), default="sim")
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--keep", type=Path, help="keep the store and exports in this (new) folder")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="takeover-bench-export-")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    store = work / "store"
    t0 = time.perf_counter()
    if args.source == "sim":
        record_sim(store, args.episodes, args.steps)
    else:
        synthetic(store, args.episodes, args.steps, work)
    with Store.open(store) as st:
        st.commit("bench")
        version = st.resolve("bench")
        episodes = [st.read_episode(e.episode_id) for e in version.manifest.episodes]
    made = time.perf_counter() - t0
    steps = sum(ep.num_steps for ep in episodes)
    rate = episodes[0].meta.rate_hz
    cams = sorted({c for ep in episodes for c in ep.cameras})
    frame_bytes = sum(len(f) for ep in episodes for c in ep.cameras.values() for f in c.frames)
    state_bytes = sum(ep.state.nbytes + ep.action.nbytes + ep.proposed_action.nbytes for ep in episodes)
    read_mb = (frame_bytes + state_bytes) / 1e6
    hours = steps / rate / 3600
    sizes = {c: episodes[0].cameras[c] for c in cams}
    print(
        f"source {args.source}: {len(episodes)} episodes, {steps} steps at {rate:g} Hz "
        f"({hours * 60:.1f} min of recording), cameras "
        + ", ".join(f"{c} {s.width}x{s.height}" for c, s in sizes.items())
        + f"; made in {made:.0f} s"
    )
    print(f"recorded store: camera JPEGs {frame_bytes / 1e6:.1f} MB = {frame_bytes / 1e9 / hours:.2f} GB/h")
    print()
    header = f"{'format':<10} {'options':<24} {'time s':>7} {'episodes/min':>13} {'read MB/s':>10} "
    header += f"{'written MB/s':>13} {'size MB':>8} {'GB/h':>7} {'vs JPEG':>8}"
    print(header)
    for fmt, extra in VARIANTS:
        if fmt not in FORMATS:
            print(f"{fmt:<10} {' '.join(extra):<24} (not in this build)")
            continue
        out = work / f"out-{fmt}-{'-'.join(a.strip('-') for a in extra) or 'default'}"
        shutil.rmtree(out, ignore_errors=True)
        argv = ["data", "export", "bench", "--format", fmt, "--out", str(out), "--store", str(store), *extra]
        sink = io.StringIO()
        t = time.perf_counter()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            code = main(argv)
        dt = time.perf_counter() - t
        if code != 0:
            print(f"{fmt:<10} {' '.join(extra):<24} failed: {sink.getvalue().strip()[-200:]}")
            continue
        size = size_of(out)
        print(
            f"{fmt:<10} {' '.join(extra) or '-':<24} {dt:7.1f} {len(episodes) / dt * 60:13.1f} "
            f"{read_mb / dt:10.1f} {size / 1e6 / dt:13.1f} {size / 1e6:8.1f} {size / 1e9 / hours:7.2f} "
            f"{size / frame_bytes:8.2f}"
        )
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main_bench()
