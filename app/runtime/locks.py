"""One runtime per store and per station: a second console (or headless run) is refused, saying
who holds them, before anything starts.

- The store: a lock file in the store's folder (:data:`takeover.storage.lock.STORE_LOCK`).
- A station served elsewhere (``station.kind = "remote"``): a lock file per station address in
  this user's runtime folder. The simulated station lives inside each run, so it has none.

Both are ``flock`` locks (:mod:`takeover.storage.lock`): a lock of a process that died is taken
over without asking. Also here: a store named explicitly that does not exist is not made by a
run (a typo would otherwise start an empty store); the default store is made on first use.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from pathlib import Path

from takeover.app.runtime.compose import StartupError, store_root
from takeover.app.runtime.config import AppConfig
from takeover.storage.lock import STORE_LOCK, ProcessLock
from takeover.storage.store import MARKER

_NOT_OURS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.ENOENT)
"""Why a store's lock file cannot be made when the store is not this user's to record into."""


def store_path_problem(config: AppConfig) -> str:
    """Why a run may not use the configured store ('' if it may): an explicit ``--store`` /
    ``[store] path`` that does not exist is not created by a run."""
    if not config.store.path:
        return ""
    root = store_root(config)
    if root.exists():
        return ""
    return (
        f"no dataset store at {root}: the folder does not exist. Create it with "
        f"`takeover data init --store {root}` (a run makes only the default store by itself)"
    )


def runtime_dir() -> Path:
    """This user's folder for lock files: ``$XDG_RUNTIME_DIR/takeover``, else a private folder in
    the temporary directory (mode 0700)."""
    base = os.environ.get("XDG_RUNTIME_DIR", "")
    folder = (
        Path(base) / "takeover"
        if base and Path(base).is_absolute()
        else Path(tempfile.gettempdir()) / f"takeover-{os.getuid()}"
    )
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_uid != os.getuid():
        raise PermissionError(errno.EACCES, f"{folder} belongs to another user", str(folder))
    return folder


def station_lock_path(url: str) -> Path:
    return runtime_dir() / f"station-{hashlib.sha256(url.encode()).hexdigest()[:16]}.lock"


def claim_station_and_store(config: AppConfig, what: str) -> contextlib.ExitStack:
    """Hold the store's and the station's locks until the returned stack is closed.

    Raises :class:`~takeover.storage.lock.LockHeldError` naming the holder. A store this user may
    not write is not locked: recording into it is refused later with its own reason.
    """
    stack = contextlib.ExitStack()
    try:
        if config.station.kind == "remote":
            url = config.station.url
            try:
                path = station_lock_path(url)
            except OSError as exc:
                raise StartupError(f"cannot make a folder for lock files: {exc.strerror or exc}") from None
            lock = stack.enter_context(ProcessLock(path, what))
            lock.acquire(
                f"the station at {url}",
                "one console per station: close that one first (or stop its engine)",
            )
        root = store_root(config)
        if not config.store.path and not (root / MARKER).exists():
            root.mkdir(parents=True, exist_ok=True)  # the default store is made on first use
        lock = stack.enter_context(ProcessLock(root / STORE_LOCK, what))
        try:
            lock.acquire(
                f"the dataset store at {root}",
                "one console per store: close that one first, or give this run another store (--store)",
            )
        except OSError as exc:
            if exc.errno not in _NOT_OURS:
                reason = exc.strerror or exc
                raise StartupError(f"cannot lock the dataset store at {root}: {reason}") from None
            # a store this user may only read (or not a folder): the store refuses it in its own words
    except BaseException:
        stack.close()
        raise
    return stack
