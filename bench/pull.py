"""Training-read throughput of a pulled version, the same against a baseline, and commit latency.

One run prints samples/s for batch 32, 2 DataLoader workers (fork), shuffled, 2 cameras 640x480 +
state, for: (a) the full-size JPEG path (a verified local pull), (b) the training cache at
224x224, (c) state only (no image key), (d) a streaming pull from an S3 server on loopback
(moto's, a process of its own), (e) a baseline that decodes the same JPEG bytes from RAM with
OpenCV in the same DataLoader configuration; each as a ratio to (e), by wall time and by the
workers' CPU time per sample (steadier when other work shares the machine). Then commit + tag
latency (``bench/commit.py``), and bytes per hour and random frame reads per second of each
encoding of camera streams (``bench/stream_encodings.py``; ``--no-encodings`` skips it).
``--rehash`` adds what a second pull of the same version costs with and without hashing the cache
again (stamps against a full re-hash).

Frames are realistic for JPEG: gradients and sines with noise, quality 90, ~66 KB each, kept in
frame blobs as the recorder stores them.

Run: ``python bench/pull.py [--episodes 8] [--steps 150] [--epochs 2] [--commit-sizes 1000 3000 10000]``
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from takeover.storage import pull
from takeover.storage.cache import Verify
from takeover.storage.pull import decode_rgb_chw
from takeover.storage.schema import CameraStream
from takeover.storage.store import Store
from takeover.storage.testing import frames_in_a_log, make_episode
from takeover.storage.testing_s3 import TEST_CREDENTIALS, free_port, make_bucket

CAMERAS = ("front", "wrist")
H, W = 480, 640
T = TypeVar("T")
BATCH, WORKERS = 32, 2
FORK = "fork"
KEYS = ["state", *(f"images.{c}" for c in CAMERAS)]
"""What the items hold in (a), (b), (d) and (e): 2 cameras and the state."""


def realistic_frames(count: int, seed: int) -> list[bytes]:
    """``count`` distinct 640x480 JPEGs at quality 90 (gradients, sines and noise: ~66 KB each)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    out = []
    for k in range(count):
        base = np.stack(
            [
                xx * 0.4 + yy * 0.1 + 30 * k,
                xx * 0.1 + yy * 0.5 + 50 * k,
                128 + 100 * np.sin((xx + yy) / (40 + k)),
            ],
            -1,
        )
        img = np.clip(base % 256 + rng.normal(0, 5, (H, W, 3)), 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        out.append(bytes(buf.tobytes()))
    return out


def fill_store(store: Store, episodes: int, steps: int, pool: list[bytes], tmp: Path) -> None:
    """Episodes with a frame of each camera at every step, the frames in frame blobs."""
    tmp.mkdir(parents=True, exist_ok=True)
    for e in range(episodes):
        ep = make_episode(f"ep{e:03d}", steps, seed=e, cameras=(), state_dim=14, action_dim=7)
        every = np.arange(steps, dtype=np.int64)
        for ci, cam in enumerate(CAMERAS):
            frames = [pool[(e * 31 + ci * 17 + s) % len(pool)] for s in range(steps)]
            ep.cameras[cam] = CameraStream(cam, frames, ep.timestamps + 0.004, every, H, W)
            frames_in_a_log(ep, cam, tmp / f"{ep.meta.episode_id}-{cam}.log")
        store.add_episode(ep)
    store.commit("bench")


class RamJpegs(Dataset[dict[str, torch.Tensor]]):
    """The baseline: the same JPEG bytes held in RAM, decoded with OpenCV per sample."""

    def __init__(self, frames: dict[str, list[bytes]], state: np.ndarray) -> None:
        self.frames, self.state = frames, state

    def __len__(self) -> int:
        return int(self.state.shape[0])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {"state": torch.from_numpy(self.state[i].copy())}
        for cam, frames in self.frames.items():
            item[f"images.{cam}"] = torch.from_numpy(decode_rgb_chw(frames[i]))
        return item


@dataclass
class Rate:
    per_s: float = 0.0
    """Samples per second of wall time (the first batch of each epoch, worker start, not counted)."""
    cpu_ms: float = 0.0
    """CPU time of the worker processes per sample (user + system): steadier than wall time when
    other work shares the machine."""

    def better(self, other: Rate) -> Rate:
        return Rate(max(self.per_s, other.per_s), min(self.cpu_ms or other.cpu_ms, other.cpu_ms))


def samples_per_s(ds: Dataset[dict[str, torch.Tensor]], epochs: int) -> Rate:
    """Shuffled reading of ``epochs`` epochs, each with its own two workers."""
    loader = DataLoader(
        ds, batch_size=BATCH, num_workers=WORKERS, shuffle=True, multiprocessing_context="fork"
    )
    counted, wall, total = 0, 0.0, 0
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(epochs):
        t0 = 0.0
        for batch in loader:
            total += int(batch["state"].shape[0])
            if not t0:
                t0 = time.perf_counter()
                continue
            counted += int(batch["state"].shape[0])
        wall += time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers have ended and been reaped
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return Rate(counted / wall, cpu / total * 1e3)


@contextmanager
def s3_bucket_url() -> Iterator[str]:
    """A bucket on moto's S3 server, run as a process of its own on loopback (as a remote endpoint
    would be: its work is not done in the process whose workers are measured)."""
    os.environ.update(TEST_CREDENTIALS)
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{port}"
        yield f"s3://{make_bucket(endpoint)}/bench?endpoint={endpoint}"
    finally:
        server.terminate()
        server.wait(10)


def timed(label: str, fn: Callable[[], T]) -> T:
    t0 = time.perf_counter()
    out = fn()
    print(f"  ({label}: {time.perf_counter() - t0:.1f} s)")
    return out


def reading(args: argparse.Namespace, root: Path) -> None:
    pool = realistic_frames(24, seed=1)
    print(
        f"version: {args.episodes} episodes x {args.steps} steps, 2 cameras 640x480 at every step, "
        f"JPEG q90 ~{np.mean([len(f) for f in pool]) / 1e3:.0f} KB/frame; batch {BATCH}, "
        f"{WORKERS} workers, shuffled, {args.epochs} epoch(s) per figure, best of {args.repeats}"
    )
    rates: dict[str, Rate] = {}

    def best(key: str, ds: Dataset[dict[str, torch.Tensor]], epochs: int = args.epochs) -> None:
        rates[key] = rates.get(key, Rate()).better(samples_per_s(ds, epochs))

    with (
        Store.create(root / "store") as store,
        s3_bucket_url() as url,
        Store.create(root / "s3-store", blob_url=url) as s3,
    ):
        timed("made the local store", lambda: fill_store(store, args.episodes, args.steps, pool, root / "l"))
        timed("made the S3 store", lambda: fill_store(s3, args.episodes, args.steps, pool, root / "s"))
        cache = root / "cache"
        full = timed("pulled (copy + hash)", lambda: pull("bench", store, cache_dir=cache, keys=KEYS))
        episodes = [store.read_episode(m.episode_id) for m in full.episodes]
        ram = RamJpegs(
            {c: [f for ep in episodes for f in ep.cameras[c].frames] for c in CAMERAS},
            np.concatenate([ep.state for ep in episodes]),
        )
        del episodes
        sized = timed(
            "built the training cache 224x224",
            lambda: pull("bench", store, cache_dir=cache, keys=KEYS, image_size=(224, 224)),
        )
        state = pull("bench", store, cache_dir=root / "state-cache", keys=["state", "action"])
        # Alternated, the best of each counts: other work on the machine comes and goes.
        for k in range(args.repeats):
            for key, ds in (("e", ram), ("a", full), ("b", sized), ("c", state)):
                best(key, ds)
            cold = root / f"stream-cache-{k}"  # a new cache: every blob is fetched from S3
            streamed = pull("bench", s3, cache_dir=cold, keys=KEYS, stream=True, cache_max_bytes=4 << 30)
            best("d", streamed, 1)
            best("d2", streamed)
    rows = [
        ("a", "full-size JPEG path (verified local pull)"),
        ("b", "training cache 224x224"),
        ("c", "state only (no image key)"),
        ("d", "streaming from S3 on loopback, first epoch (cold cache)"),
        ("d2", "streaming from S3, blobs in the local cache"),
        ("e", "baseline: same JPEG bytes decoded from RAM (OpenCV)"),
    ]
    e = rates["e"]
    for key, what in rows:
        r = rates[key]
        print(
            f"  ({key:2s}) {what:56s} {r.per_s:7.0f} samples/s {r.per_s / e.per_s:5.2f}x (e)   "
            f"worker CPU {r.cpu_ms:5.2f} ms/sample {e.cpu_ms / r.cpu_ms:5.2f}x (e)"
        )
    a, b, d = rates["a"], rates["b"], rates["d"]
    print(
        f"  targets: (a) >= 0.9x (e): {a.per_s / e.per_s:.2f} by wall time, "
        f"{e.cpu_ms / a.cpu_ms:.2f} by CPU; "
        f"(b) >= 1000/s: {b.per_s:.0f}; (d) >= 0.8x (a): {d.per_s / a.per_s:.2f} by wall time"
    )


def rehash(root: Path, episodes: int, mb: float) -> None:
    """What a second pull of the same version costs, with and without hashing the cache again."""
    state_dim = 1024
    steps = max(1, int(mb * 1e6 / (4 * state_dim)))
    with Store.open_or_create(root / "rehash-store") as store:
        for k in range(episodes):
            store.add_episode(make_episode(f"ep{k}", steps, seed=k, state_dim=state_dim))
        store.commit("bench")
        total = sum(store.blobs.size(e.digest) for e in store.episodes_in("bench"))
        timings = {}
        runs: list[tuple[str, Verify]] = [
            ("first pull (copy + hash)", "stamp"),
            ("second, verify=stamp", "stamp"),
            ("third, verify=full", "full"),
        ]
        for name, verify in runs:
            t0 = time.perf_counter()
            pull("bench", store, cache_dir=root / "rehash-cache", verify=verify).close()
            timings[name] = time.perf_counter() - t0
    print(f"re-hash: {episodes} episodes, {total / 1e6:.0f} MB")
    for name, dt in timings.items():
        print(f"  {name:26s} {dt:7.3f} s   {total / 1e6 / dt:8.0f} MB/s")
    stamp, full = timings["second, verify=stamp"], timings["third, verify=full"]
    print(f"  a repeated pull with stamps takes {stamp / full:.3f} of the time of a full re-hash")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=8)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--epochs", type=int, default=2, help="epochs per throughput figure")
    ap.add_argument("--repeats", type=int, default=2, help="runs of (a) and (e), alternated; the best counts")
    ap.add_argument("--commit-sizes", type=int, nargs="*", default=[1000, 3000, 10000])
    ap.add_argument("--no-encodings", action="store_true", help="skip the camera stream encodings")
    ap.add_argument("--rehash", action="store_true", help="also time repeated pulls: stamps vs full re-hash")
    ap.add_argument("--rehash-mb", type=float, default=100.0, help="size of each re-hash episode")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="takeover-pull-") as tmp:
        reading(args, Path(tmp))
        if args.rehash:
            rehash(Path(tmp), 4, args.rehash_mb)
    sys.path.insert(0, str(Path(__file__).parent))  # the other benches, imported and called
    if args.commit_sizes:
        import commit  # bench/commit.py

        sys.argv = [commit.__file__, "--sizes", *map(str, args.commit_sizes)]
        commit.main()
    if not args.no_encodings:
        import stream_encodings  # bench/stream_encodings.py

        print("camera stream encodings: bytes per hour and random frame reads per second")
        for line in stream_encodings.report():
            print(f"  {line}", flush=True)


if __name__ == "__main__":
    main()
