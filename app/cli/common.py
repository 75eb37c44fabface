"""What the command groups share: one-line errors, the store option and where it points."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path

from takeover.storage.errors import StorageError
from takeover.storage.paths import default_store_root

Handler = Callable[[argparse.Namespace], int]

USAGE_EXIT = 2
"""Exit status for anything a person must fix (bad input, a missing file, a refused request)."""


def error(message: str) -> int:
    """Print one ``error: ...`` line on stderr; return the usage exit status."""
    print(f"error: {message}", file=sys.stderr)
    return USAGE_EXIT


def user_errors(*kinds: type[Exception]) -> Callable[[Handler], Handler]:
    """Storage errors (and ``kinds``) are a person's to fix: one line, exit 2, no traceback."""
    caught = (StorageError, *kinds)

    def decorate(fn: Handler) -> Handler:
        @functools.wraps(fn)
        def wrapper(args: argparse.Namespace) -> int:
            try:
                return fn(args)
            except caught as exc:
                return error(str(exc))

        return wrapper

    return decorate


def add_store_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store", metavar="PATH", help="dataset store folder (default: $TAKEOVER_STORE or per-user data dir)"
    )


def store_root(args: argparse.Namespace) -> Path:
    return Path(args.store).expanduser() if args.store else default_store_root()
