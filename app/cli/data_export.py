"""`takeover data export TAG --format robomimic --out DIR`: a version in a format that training
code reads as it is (`takeover.storage.exports` does the work; this is its command line)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from takeover.app.cli.common import add_store_option, open_store, user_errors
from takeover.storage.exports.common import LABELS, ExportError, choose, export_folder

FORMATS = ("robomimic",)


def _labels(text: str) -> list[str]:
    labels = [k.strip() for k in text.split(",") if k.strip()]
    unknown = sorted(set(labels) - set(LABELS))
    if not labels or unknown:
        raise argparse.ArgumentTypeError(
            f"labels are {', '.join(LABELS)}, separated by commas (got {text!r})"
        )
    return labels


@user_errors()
def run_export(args: argparse.Namespace) -> int:
    from takeover.storage.exports import robomimic

    out = Path(args.out)
    with open_store(args) as store:
        chosen = choose(store, args.tag, args.episodes, args.labels)
        try:
            with export_folder(out, args.format, chosen) as folder:
                steps = robomimic.write_robomimic(
                    store, chosen, folder, progress=True, say=lambda line: print(line, file=sys.stderr)
                )
        except OSError as exc:  # e.g. a full disk: the partial export is already removed
            raise ExportError(
                f"cannot write the export into {out.absolute().parent}: {exc.strerror or exc}; "
                "nothing was left there"
            ) from None
    print(f"exported {args.tag} (version {chosen.digest[:12]}) as {args.format}: {out / robomimic.FILE}")
    print(f"{len(chosen.entries)} episodes, {steps} steps; provenance in {out / 'provenance.json'}")
    return 0


def add_export_parser(sub: Any) -> argparse.ArgumentParser:
    """Register `data export` on the `data` subparsers."""
    p = sub.add_parser(
        "export",
        help="write a version in a format training code reads as it is",
        description="Write the version TAG names into a new folder OUT, in a format training code "
        "reads as it is: robomimic HDF5 (demo.hdf5, with mask/ filter keys success, near_success, "
        "failure, has_intervention, human_only). The folder appears only when complete, with "
        "provenance.json naming the version.",
    )
    p.add_argument("tag", metavar="TAG")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to make (must not exist)")
    p.add_argument("--episodes", nargs="+", metavar="ID", help="only these episodes of the version")
    p.add_argument(
        "--labels", type=_labels, metavar="L,L", help=f"only episodes with these labels ({', '.join(LABELS)})"
    )
    add_store_option(p)
    p.set_defaults(func=run_export)
    return p
