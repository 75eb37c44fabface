"""`takeover data pull TAG`: a version into the local pull cache, every blob verified, ready for
training (`takeover.storage.pull` does the work; this is its command line)."""

from __future__ import annotations

import argparse
import re
from typing import Any

from takeover.app.cli.common import add_store_option, store_root, store_urls, user_errors
from takeover.storage.paths import default_cache_root
from takeover.storage.train_cache import Size, parse_size

_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def keys_type(text: str) -> list[str]:
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys:
        raise argparse.ArgumentTypeError("give item keys separated by commas, e.g. state,action")
    return keys


def size_type(text: str) -> Size:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def bytes_type(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*", text.upper())
    if not m or float(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"a size in bytes, e.g. 500M or 20G (got {text!r})")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


@user_errors()
def run_pull(args: argparse.Namespace) -> int:
    from takeover.storage.pull import pull  # torch loads only for this command

    catalog, blob = store_urls(args)
    cache = args.cache or default_cache_root()
    ds = pull(
        args.tag,
        store_root(args),
        cache,
        args.verify,
        catalog_url=catalog,
        blob_url=blob,
        keys=args.keys,
        image_size=args.image_size,
        stream=args.stream,
        cache_max_bytes=args.cache_max,
        progress=True,
    )
    print(f"pulled {args.tag} -> version {ds.version}")
    keys = ", ".join(args.keys) if args.keys else "all"
    print(f"{len(ds.episodes)} episodes, {len(ds)} steps; keys: {keys}")
    if args.stream:
        print(f"streaming: blobs are fetched on first access into {cache}/stream")
    else:
        print(f"{ds.fetched.line()}; cache {cache}")
    if args.image_size:
        h, w = args.image_size
        print(f"training cache {h}x{w}: {', '.join(ds.image_cameras) or 'no camera asked for'}")
    return 0


def add_pull_parser(sub: Any) -> argparse.ArgumentParser:
    """Register `data pull` on the `data` subparsers."""
    p = sub.add_parser(
        "pull",
        help="copy a version into the local pull cache, verified",
        description="Copy the version TAG names into the local pull cache, hashing every blob on the "
        "way in (cached blobs are not fetched again; an interrupted pull continues where it stopped). "
        "Only the blobs the keys need are fetched: a state-only pull fetches no camera frames.",
    )
    p.add_argument("tag", metavar="TAG")
    p.add_argument(
        "--keys",
        type=keys_type,
        metavar="K,K",
        help="item keys training reads, e.g. state,action,images.front (default: all)",
    )
    p.add_argument(
        "--cache", metavar="DIR", help="the pull cache (default: $TAKEOVER_CACHE or ~/.cache/takeover)"
    )
    p.add_argument(
        "--stream",
        action="store_true",
        help="copy nothing up front: blobs are fetched on first access into a bounded cache "
        "(with --image-size, the training cache is built through it)",
    )
    p.add_argument(
        "--cache-max",
        type=bytes_type,
        metavar="SIZE",
        help="with --stream: the bound of the streaming cache, e.g. 20G (default: half the free space)",
    )
    p.add_argument(
        "--image-size",
        type=size_type,
        metavar="HxW",
        help="also decode and resize every frame once into the training cache, e.g. 224x224",
    )
    p.add_argument(
        "--verify",
        choices=("stamp", "full"),
        default="stamp",
        help="stamp: hash cached blobs again only if their file changed (default); full: hash all again",
    )
    add_store_option(p)
    p.set_defaults(func=run_pull)
    return p
