"""Record 3 synthetic cameras (640×480, 30 fps) plus 200 Hz state for 60 s, the way a station would.

Prints dropped frames, CPU cores used by the whole recording process (cameras, loop, encoders,
log writer), finalize latency, bytes per hour, the recorder's cost per step on the loop thread,
and the random-access frame read rate of the stored episode (what training sees).

Run: ``python bench/record.py [--seconds 60] [--cameras 3] [--rate 200]``
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from takeover.recorder.cameras import SyntheticCamera, SyntheticCameraConfig
from takeover.recorder.capture import CameraCapture
from takeover.recorder.recorder import EpisodeRecorder, RecorderConfig
from takeover.recorder.testing import end_record, start_record, step_record
from takeover.storage.blobs import LocalBlobStore
from takeover.storage.episode_file import EpisodeReader
from takeover.storage.pull import decode_rgb_chw
from takeover.storage.store import Store


def _cpu() -> float:
    """CPU seconds of this process and of its children once they have ended (the encoder process:
    counted from its start, its imports included)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--cameras", type=int, default=3)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=200.0, help="state rate (Hz)")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--jpeg-quality", type=int, default=RecorderConfig().jpeg_quality)
    ap.add_argument("--encoder", choices=("process", "threads"), default=RecorderConfig().encoder)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="takeover-bench-") as tmp, Store.create(Path(tmp) / "s") as store:
        rec = EpisodeRecorder(store, RecorderConfig(jpeg_quality=args.jpeg_quality, encoder=args.encoder))
        cams = [
            SyntheticCamera(SyntheticCameraConfig(f"cam{i}", args.width, args.height, args.fps, seed=i))
            for i in range(args.cameras)
        ]
        captures = [CameraCapture(cam, rec.on_frame, rec.on_camera_health) for cam in cams]
        for cam in cams:
            cam.connect()
        rec.on_episode_start(start_record("bench", args.rate))
        for c in captures:
            c.start()
        dt = 1.0 / args.rate
        n = int(args.seconds * args.rate)
        step_cost = np.empty(n)
        late = 0
        wall0, cpu0 = time.monotonic(), _cpu()
        for i in range(n):
            deadline = wall0 + i * dt
            delay = deadline - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            t = time.monotonic()
            late += t - deadline > dt
            record = step_record(i, t, period_error=t - deadline)
            c0 = time.perf_counter()
            rec.on_step(record)
            step_cost[i] = time.perf_counter() - c0
        for c in captures:
            c.stop()
        captured = {c.camera.name: c.frames for c in captures}
        rec.on_episode_end(end_record())
        finalize_s = rec.last_finalize_s
        rec.close()  # the encoder process ends: its CPU time is counted
        wall, cpu = time.monotonic() - wall0, _cpu() - cpu0
        for cam in cams:
            cam.close()

        ep = store.read_episode("bench")
        header_blob = store.get_episode("bench").blob_digest
        size = store.blobs.size(header_blob)
        size += sum(store.blobs.size(d) for d in store.catalog.frame_blobs(["bench"]).get("bench", []))
        duration = float(ep.timestamps[-1] - ep.timestamps[0])
        report = store.check()

        assert isinstance(store.blobs, LocalBlobStore)
        reader = EpisodeReader(store.blobs.path(header_blob), store.blobs)
        rng = random.Random(0)
        reads = 300
        r0 = time.perf_counter()
        for _ in range(reads):
            step = rng.randrange(ep.num_steps)
            for name in reader.camera_names:
                jpeg = reader.frame_at(name, step)
                if jpeg is not None:
                    decode_rgb_chw(jpeg)
        read_rate = reads / (time.perf_counter() - r0)
        reader.close()

    print(
        f"recorded {args.seconds:.0f} s: {args.cameras} cameras {args.width}x{args.height} "
        f"@ {args.fps:g} fps "
        f"+ state @ {args.rate:g} Hz ({ep.num_steps} steps, {late} late steps)"
    )
    for name, cam in sorted(ep.cameras.items()):
        print(f"  {name}: captured {captured[name]}, stored {len(cam.frames)}, dropped {cam.dropped}")
    print(f"dropped frames total     {sum(c.dropped for c in ep.cameras.values())}")
    print(f"CPU cores used           {cpu / wall:.3f}  (loop, cameras, writer, encoders)")
    print(f"finalize latency         {finalize_s * 1000:.0f} ms")
    print(
        f"bytes per hour           {size / duration * 3600 / 1e9:.2f} GB "
        f"({size / 1e6:.0f} MB in {duration:.1f} s)"
    )
    print(
        f"recorder on_step cost    mean {step_cost.mean() * 1e6:.1f} us, "
        f"p99 {np.percentile(step_cost, 99) * 1e6:.1f} us, "
        f"max {step_cost.max() * 1e6:.0f} us"
    )
    print(
        f"random step read+decode  {read_rate:.0f} steps/s ({len(ep.cameras)} cameras per step, one thread)"
    )
    print(f"store consistent         {report.healthy}")


if __name__ == "__main__":
    main()
