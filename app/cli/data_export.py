"""`takeover data export TAG --format FORMAT --out DIR`: a version in a format that training code
reads as it is (`takeover.storage.exports` does the work; this is its command line)."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from takeover.app.cli.common import add_store_option, open_store, user_errors
from takeover.storage.exports.common import LABELS, ExportError, ExportSettings, choose, export_folder
from takeover.storage.video import CODECS, VideoParams

FORMATS = {
    "lerobot": "lerobot",
    "robomimic": "robomimic",
    "zarr": "zarr_replay",
}
"""Format name -> module of `takeover.storage.exports` with ``write(...)`` and ``MAIN``."""


def _labels(text: str) -> list[str]:
    labels = [k.strip() for k in text.split(",") if k.strip()]
    unknown = sorted(set(labels) - set(LABELS))
    if not labels or unknown:
        raise argparse.ArgumentTypeError(
            f"labels are {', '.join(LABELS)}, separated by commas (got {text!r})"
        )
    return labels


def _settings(args: argparse.Namespace) -> ExportSettings:
    base = ExportSettings()
    try:
        lerobots = args.codec in (None, "av1")  # LeRobot's AV1 settings, else the codec's own
        video = VideoParams(
            args.codec or base.video.codec,
            base.video.gop if args.gop is None else args.gop,
            args.crf if args.crf is not None else (base.video.crf if lerobots else None),
            base.video.preset if lerobots else "",
        )
    except ValueError as exc:
        raise ExportError(str(exc)) from None
    return ExportSettings(video=video, zarr_videos=args.videos)


@user_errors()
def run_export(args: argparse.Namespace) -> int:
    writer = importlib.import_module(f"takeover.storage.exports.{FORMATS[args.format]}")
    settings = _settings(args)
    out = Path(args.out)
    with open_store(args) as store:
        chosen = choose(store, args.tag, args.episodes, args.labels)
        try:
            with export_folder(out, args.format, chosen) as folder:
                steps = writer.write(
                    store,
                    chosen,
                    folder,
                    settings,
                    progress=True,
                    say=lambda line: print(line, file=sys.stderr),
                )
        except OSError as exc:  # e.g. a full disk: the partial export is already removed
            raise ExportError(
                f"cannot write the export into {out.absolute().parent}: {exc.strerror or exc}; "
                "nothing was left there"
            ) from None
    print(f"exported {args.tag} (version {chosen.digest[:12]}) as {args.format}: {out / writer.MAIN}")
    print(f"{len(chosen.entries)} episodes, {steps} steps; provenance in {out / 'provenance.json'}")
    return 0


def add_export_parser(sub: Any) -> argparse.ArgumentParser:
    """Register `data export` on the `data` subparsers."""
    p = sub.add_parser(
        "export",
        help="write a version in a format training code reads as it is",
        description="Write the version TAG names into a new folder OUT, in a format training code "
        "reads as it is: a LeRobot v3.0 dataset (meta/, data/ parquet, videos/ mp4; load it with "
        "LeRobotDataset(repo_id, root=OUT)), robomimic HDF5 (demo.hdf5, with mask/ filter keys "
        "success, near_success, failure, has_intervention, human_only), or a diffusion_policy replay "
        "buffer (replay_buffer.zarr in zarr format 2, camera images as uint8 arrays or, with --videos, "
        "videos/<episode>/<camera index>.mp4 beside it). The folder appears only when complete, with "
        "provenance.json naming the version.",
    )
    p.add_argument("tag", metavar="TAG")
    p.add_argument("--format", required=True, choices=sorted(FORMATS))
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to make (must not exist)")
    p.add_argument("--episodes", nargs="+", metavar="ID", help="only these episodes of the version")
    p.add_argument(
        "--labels", type=_labels, metavar="L,L", help=f"only episodes with these labels ({', '.join(LABELS)})"
    )
    video = p.add_argument_group("video (formats that store camera frames as video)")
    video.add_argument("--codec", choices=sorted(CODECS), help="video codec (default av1, as LeRobot)")
    video.add_argument("--gop", type=int, metavar="N", help="frames between keyframes (default 2)")
    video.add_argument("--crf", type=int, metavar="Q", help="quality, lower is better (default 30 for av1)")
    video.add_argument(
        "--videos",
        action="store_true",
        help="zarr: camera images as videos/<episode>/<camera>.mp4 beside the arrays, not uint8 arrays",
    )
    add_store_option(p)
    p.set_defaults(func=run_export)
    return p
