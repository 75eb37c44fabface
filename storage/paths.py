"""Default locations of the dataset store and the pull cache (XDG base directories)."""

from __future__ import annotations

import os
from pathlib import Path


def xdg_dir(var: str, fallback: str) -> Path:
    """An XDG base directory (``var``, e.g. XDG_DATA_HOME), else ``~/fallback``."""
    value = os.environ.get(var, "")
    # The XDG spec says relative paths are invalid and must be ignored.
    if value and Path(value).is_absolute():
        return Path(value)
    return Path.home() / fallback


def default_store_root() -> Path:
    """`$TAKEOVER_STORE` if set, else `$XDG_DATA_HOME/takeover/store` (~/.local/share/takeover/store)."""
    env = os.environ.get("TAKEOVER_STORE", "")
    if env:
        return Path(env).expanduser()
    return xdg_dir("XDG_DATA_HOME", ".local/share") / "takeover" / "store"


CATALOG_URL_ENV = "TAKEOVER_CATALOG_URL"
BLOB_URL_ENV = "TAKEOVER_BLOB_URL"


def store_urls_from_env(catalog_url: str | None, blob_url: str | None) -> tuple[str | None, str | None]:
    """The catalog and blob URLs a process uses: the environment's (``$TAKEOVER_CATALOG_URL``,
    ``$TAKEOVER_BLOB_URL``) where set, else the ones given (the configuration's); None for the
    store folder's own."""
    catalog = os.environ.get(CATALOG_URL_ENV) or catalog_url or None
    blob = os.environ.get(BLOB_URL_ENV) or blob_url or None
    return catalog, blob


def default_cache_root() -> Path:
    """`$TAKEOVER_CACHE` if set, else `$XDG_CACHE_HOME/takeover` (~/.cache/takeover)."""
    env = os.environ.get("TAKEOVER_CACHE", "")
    if env:
        return Path(env).expanduser()
    return xdg_dir("XDG_CACHE_HOME", ".cache") / "takeover"
