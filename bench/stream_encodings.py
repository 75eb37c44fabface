"""What each way of storing camera streams costs: bytes per hour and random frame reads per second.

For JPEG at quality 90 (how the recorder stores frames), H.264 and AV1 (``takeover data
transcode``, keyframe every ``--gop`` frames), on the same frames: three cameras at 640x480 and
30 fps, rendered by the simulated station (MuJoCo, Meta-World pick-place, the arm moving), or a
synthetic moving textured scene (``--synthetic``). Prints, per encoding: bytes per frame, GB per
hour for the three cameras, random single-frame reads per second (random camera and frame, one
process, the blob read by range from a local store and decoded to RGB), encode speed, and the
pixel error against the JPEG decode (mean absolute error and PSNR).

Run: ``MUJOCO_GL=egl python bench/stream_encodings.py [--seconds 4] [--reads 300] [--gop 10] [--synthetic]``;
from another bench script: ``from stream_encodings import report`` (the printout as lines), or
``measure_encodings(frames, ...)`` on frames of its own. (Not
named ``encodings``: that is a standard-library package, always imported first.)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from takeover.storage.blobs import LocalBlobStore
from takeover.storage.schema import FrameBlob
from takeover.storage.testing import encode_rgb_jpeg, moving_scene
from takeover.storage.video import VideoFrames, VideoParams, available_codecs, decode_jpeg_rgb, encode_video

CAMERAS = ("corner", "gripperPOV", "corner2")
HEIGHT, WIDTH, FPS = 480, 640, 30


@dataclass(frozen=True)
class EncodingResult:
    name: str
    bytes_per_frame: float
    gb_per_hour: float
    """For all the cameras together at ``FPS``."""
    reads_per_s: float
    encode_fps: float
    mean_abs_error: float
    """Against the JPEG q90 decode (0 for JPEG itself)."""
    psnr_db: float

    def line(self) -> str:
        psnr = "-" if self.psnr_db == float("inf") else f"{self.psnr_db:.1f}"
        return (
            f"{self.name:<22}{self.bytes_per_frame / 1e3:9.1f} KB{self.gb_per_hour:9.2f} GB/h"
            f"{self.reads_per_s:10.0f}/s{self.encode_fps:9.0f} fps{self.mean_abs_error:8.2f}{psnr:>8}"
        )


HEADER = (
    f"{'encoding':<22}{'per frame':>12}{'3 cams/hour':>12}{'rand reads':>12}{'encode':>13}"
    f"{'MAE':>8}{'PSNR':>8}"
)


def station_frames(num_frames: int) -> dict[str, list[np.ndarray]]:
    """Frames of :data:`CAMERAS` rendered by the simulated station while the arm sweeps smoothly."""
    from takeover.app.station.metaworld_sim import MetaWorldConfig, MetaWorldStation

    config = MetaWorldConfig(cameras=CAMERAS, width=WIDTH, height=HEIGHT, rate_hz=FPS)
    frames: dict[str, list[np.ndarray]] = {c: [] for c in CAMERAS}
    with MetaWorldStation(config) as station:
        station.reset(0)
        for i in range(num_frames):
            t = i / FPS
            action = np.array(
                [np.sin(t * 1.3), np.cos(t * 0.9), 0.6 * np.sin(t * 2.1), np.sin(t * 3.0)], dtype=np.float32
            )
            obs = station.act(action)
            for c in CAMERAS:
                frames[c].append(np.ascontiguousarray(obs.images[c]))
    return frames


def synthetic_frames(num_frames: int) -> dict[str, list[np.ndarray]]:
    return {c: moving_scene(num_frames, HEIGHT, WIDTH, seed=k) for k, c in enumerate(CAMERAS)}


def _random_reads(read: Callable[[int, int], np.ndarray], cameras: int, frames: int, n: int) -> float:
    rng = np.random.default_rng(0)
    picks = list(zip(rng.integers(0, cameras, n).tolist(), rng.integers(0, frames, n).tolist(), strict=True))
    t0 = time.perf_counter()
    for cam, i in picks:
        read(cam, i)
    return n / (time.perf_counter() - t0)


def _error(decoded: list[list[np.ndarray]], reference: list[list[np.ndarray]]) -> tuple[float, float]:
    mae, mse = [], []
    for got_cam, ref_cam in zip(decoded, reference, strict=True):
        for got, ref in zip(got_cam, ref_cam, strict=True):
            d = got.astype(np.float64) - ref
            mae.append(float(np.abs(d).mean()))
            mse.append(float(np.mean(d**2)))
    mean_mse = float(np.mean(mse))
    psnr = float("inf") if mean_mse == 0 else 10 * np.log10(255.0**2 / mean_mse)
    return float(np.mean(mae)), psnr


def measure_encodings(
    frames: dict[str, list[np.ndarray]], *, reads: int = 300, gop: int = 10, workdir: Path
) -> list[EncodingResult]:
    """Store ``frames`` (camera -> RGB frames at :data:`FPS`) each way in a local blob store under
    ``workdir`` and measure each (see the module doc)."""
    blobs = LocalBlobStore(workdir / "store")
    cams = list(frames)
    n = min(len(v) for v in frames.values())
    seconds = n / FPS
    t0 = time.perf_counter()
    jpegs = [[encode_rgb_jpeg(f, quality=90) for f in frames[c][:n]] for c in cams]
    jpeg_fps = len(cams) * n / (time.perf_counter() - t0)
    reference = [[decode_jpeg_rgb(j).astype(np.float64) for j in cam] for cam in jpegs]
    blob_frames = []
    for cam in jpegs:  # each camera's JPEGs in one frame blob, as the recorder leaves them
        lengths = np.asarray([len(j) for j in cam], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        blob_frames.append(FrameBlob(blobs, blobs.put_bytes(b"".join(cam)), offsets, lengths))
    total = sum(int(f.lengths.sum()) for f in blob_frames)
    results = [
        EncodingResult(
            "JPEG q90 (recorded)",
            total / (len(cams) * n),
            total / seconds * 3600 / 1e9,
            _random_reads(lambda c, i: decode_jpeg_rgb(blob_frames[c][i]), len(cams), n, reads),
            jpeg_fps,
            0.0,
            float("inf"),
        )
    ]
    for codec in sorted(available_codecs(), reverse=True):  # h264, then av1
        params = VideoParams(codec, gop=gop)
        videos: list[VideoFrames] = []
        t0 = time.perf_counter()
        for k, cam in enumerate(jpegs):
            out = workdir / f"{codec}-{k}.mp4"
            stamps = np.arange(n) / FPS
            index = encode_video(cam, stamps, np.arange(n), (HEIGHT, WIDTH), params, out)
            videos.append(VideoFrames(blobs, blobs.put_file(out), index))
        encode_fps = len(cams) * n / (time.perf_counter() - t0)
        size = sum(blobs.size(v.digest) for v in videos)
        mae, psnr = _error([list(v) for v in videos], reference)
        rate = _random_reads(lambda c, i: videos[c][i], len(cams), n, reads)  # noqa: B023 - used at once
        r = params.resolved()
        results.append(
            EncodingResult(
                f"{codec} gop {gop} crf {r.crf}",
                size / (len(cams) * n),
                size / seconds * 3600 / 1e9,
                rate,
                encode_fps,
                mae,
                psnr,
            )
        )
    return results


def report(seconds: float = 4.0, reads: int = 300, gop: int = 10, synthetic: bool = False) -> list[str]:
    """The bench's printout as lines (for another bench to print): what was measured, then a table."""
    n = max(2, int(seconds * FPS))
    t0 = time.perf_counter()
    frames = synthetic_frames(n) if synthetic else station_frames(n)
    source = "synthetic moving scene" if synthetic else "MuJoCo Meta-World pick-place, arm moving"
    lines = [
        f"{len(CAMERAS)} cameras {WIDTH}x{HEIGHT} at {FPS} fps, {n} frames each ({source}; "
        f"made in {time.perf_counter() - t0:.0f} s); reads: random camera and frame, one process",
        HEADER,
    ]
    with tempfile.TemporaryDirectory(prefix="takeover-encodings-") as tmp:
        results = measure_encodings(frames, reads=reads, gop=gop, workdir=Path(tmp))
    return lines + [r.line() for r in results]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0, help="length of the clip per camera")
    ap.add_argument("--reads", type=int, default=300, help="random frame reads per encoding")
    ap.add_argument("--gop", type=int, default=10, help="keyframe interval of the videos")
    ap.add_argument("--synthetic", action="store_true", help="a synthetic moving scene, not MuJoCo")
    args = ap.parse_args()
    for line in report(args.seconds, args.reads, args.gop, args.synthetic):
        print(line, flush=True)


if __name__ == "__main__":
    main()
