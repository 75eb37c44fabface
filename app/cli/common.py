"""What the command groups share: one-line errors, the store option and where it points, and the
argument types that check a value before any work starts (endpoints, seeds)."""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from takeover.app.net.endpoints import EndpointError, check_endpoint
from takeover.storage.durations import parse_duration
from takeover.storage.errors import StorageError
from takeover.storage.paths import BLOB_URL_ENV, CATALOG_URL_ENV, default_store_root
from takeover.storage.seeds import MAX_SEED
from takeover.storage.store import Store

Handler = Callable[[argparse.Namespace], int]

USAGE_EXIT = 2
"""Exit status for anything a person must fix (bad input, a missing file, a refused request)."""


def error(message: str) -> int:
    """Print one ``error: ...`` line on stderr; return the usage exit status."""
    print(f"error: {message}", file=sys.stderr)
    return USAGE_EXIT


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one ``error: ...`` line (exit 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_EXIT, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Rows under their headers, each column as wide as its widest cell."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def when(t: float) -> str:
    """A wall-clock time as people read it (local time, to the second)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def endpoint_type(*, bind: bool) -> Callable[[str], str]:
    """An argparse type for an endpoint to bind (``bind=True``) or to connect to."""

    def endpoint(text: str) -> str:
        try:
            return check_endpoint(text, bind=bind)
        except EndpointError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return endpoint


def seed_type(text: str) -> int:
    """An argparse type for a simulator seed: a whole number in 0..MAX_SEED."""
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a seed is a whole number in 0..{MAX_SEED}, got {text!r}") from None
    if not 0 <= seed <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed is a whole number in 0..{MAX_SEED}, got {seed}")
    return seed


def user_errors(*kinds: type[Exception]) -> Callable[[Handler], Handler]:
    """Storage errors (and ``kinds``) are a person's to fix: one line, exit 2, no traceback."""
    caught: tuple[type[Exception], ...] = (StorageError, *kinds)

    def decorate(fn: Handler) -> Handler:
        @functools.wraps(fn)
        def wrapper(args: argparse.Namespace) -> int:
            try:
                return fn(args)
            except caught as exc:
                return error(str(exc))

        return wrapper

    return decorate


def add_store_option(p: argparse.ArgumentParser, *, urls_only: bool = False) -> None:
    """``--store`` (unless ``urls_only``), ``--catalog-url`` and ``--blob-url``."""
    if not urls_only:
        p.add_argument(
            "--store",
            metavar="PATH",
            help="dataset store folder (default: $TAKEOVER_STORE or per-user data dir)",
        )
    p.add_argument(
        "--catalog-url",
        metavar="URL",
        help=f"catalog database, e.g. postgresql+psycopg://host/db (default: ${CATALOG_URL_ENV}, else "
        "[store] catalog_url of the configuration, else the store folder's catalog.db)",
    )
    p.add_argument(
        "--blob-url",
        metavar="URL",
        help=f"where the blobs live, e.g. s3://bucket/prefix (default: ${BLOB_URL_ENV}, else "
        "[store] blob_url of the configuration, else the store folder, or the URL the store was made with)",
    )


def store_root(args: argparse.Namespace) -> Path:
    return Path(args.store).expanduser() if args.store else default_store_root()


def store_urls(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(catalog URL, blob URL) for a store command: the option, else the environment, else the
    configuration file's ``[store]``; None where none is given (the store folder's own)."""
    catalog = getattr(args, "catalog_url", None) or os.environ.get(CATALOG_URL_ENV) or None
    blob = getattr(args, "blob_url", None) or os.environ.get(BLOB_URL_ENV) or None
    if catalog is None or blob is None:
        from takeover.app.runtime.config import ConfigError, load_config
        from takeover.app.runtime.config_file import config_file_for

        try:
            section = load_config(config_file_for(None)).store
        except ConfigError as exc:
            raise StorageError(f"cannot read the configuration for the store's URLs: {exc}") from None
        catalog = catalog or section.catalog_url or None
        blob = blob or section.blob_url or None
    return catalog, blob


def grace_period_s() -> float:
    """The configuration's ``[store] grace_period`` in seconds (24 h by default)."""
    from takeover.app.runtime.config import ConfigError, load_config
    from takeover.app.runtime.config_file import config_file_for

    try:
        return parse_duration(load_config(config_file_for(None)).store.grace_period)
    except ConfigError as exc:
        raise StorageError(f"cannot read the configuration for the store's grace period: {exc}") from None


def open_store(args: argparse.Namespace, *, create: bool = False) -> Store:
    """The store a command names (``--store``, ``--catalog-url``, ``--blob-url``), opened or made."""
    catalog, blob = store_urls(args)
    if create:
        return Store.create(store_root(args), catalog, blob_url=blob)
    return Store.open(store_root(args), catalog, blob_url=blob)
