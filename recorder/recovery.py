"""Recovery of attempts a crash left unfinished, and removal of finished logs.

Every directory under ``<store>/wal/`` is an attempt that has not reached the store yet:

- already cataloged (finalize was cut after the catalog commit): the log is removed;
- ended (its end record is durable) but not stored: it is finalized now, as a complete attempt;
- ended as discarded, or holding no step: the log is removed;
- otherwise: it becomes an episode marked ``recovered`` with ``cut_at``, the wall-clock time of
  its last durable record; torn tails are cut off.

Temporary files of writes a crash cut short (a finalize killed while writing the episode file)
are deleted. Logs are removed by renaming them to ``.trash-*`` first, so a removal cut by a crash is finished
by the next recovery instead of leaving a half log that looks unfinished.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from takeover.recorder.disk import (
    DiskFullError,
    disk_full,
    episode_file_bytes,
    free_bytes,
    full_disk_line,
    megabytes,
)
from takeover.recorder.wal import WalContents, log_in_use
from takeover.recorder.wal_reader import build_episode, read_wal
from takeover.storage.errors import UnknownEpisodeError
from takeover.storage.schema import Episode
from takeover.storage.store import Store

log = logging.getLogger(__name__)

TRASH_PREFIX = ".trash-"


@dataclass(frozen=True)
class LogOutcome:
    episode_id: str
    action: str
    """'recovered', 'finalized', 'removed' or 'failed'."""
    detail: str = ""

    def line(self) -> str:
        return f"{self.action} {self.episode_id}" + (f": {self.detail}" if self.detail else "")


def pending_logs(store: Store) -> list[Path]:
    """Write-ahead log directories of attempts not (fully) in the store, oldest first. Logs that a
    live recorder (this process or another) is still writing are not pending."""
    wal = store.wal_dir
    if not wal.is_dir():
        return []
    dirs = [p for p in wal.iterdir() if p.is_dir() and not p.name.startswith(".") and not log_in_use(p)]
    return sorted(dirs, key=lambda p: p.stat().st_mtime)


def leftover_trash(store: Store) -> list[Path]:
    wal = store.wal_dir
    return sorted(wal.glob(f"{TRASH_PREFIX}*")) if wal.is_dir() else []


def remove_log(directory: Path) -> None:
    """Remove a log directory: rename it out of the way (atomic), then delete it."""
    if not directory.exists():
        return
    trash = directory.parent / f"{TRASH_PREFIX}{directory.name}-{uuid.uuid4().hex[:8]}"
    os.replace(directory, trash)
    shutil.rmtree(trash, ignore_errors=True)


def store_log(store: Store, directory: Path, contents: WalContents | None = None) -> LogOutcome:
    """Put the attempt logged in ``directory`` into the store (or drop it), then remove the log.
    ``contents``: what the writer kept in memory (finalize); None reads the log (recovery)."""
    episode_id = directory.name
    try:
        store.get_episode(episode_id)
    except UnknownEpisodeError:
        pass
    else:
        remove_log(directory)
        return LogOutcome(episode_id, "removed", "already in the store")
    if contents is None:
        contents = read_wal(directory)
    if contents.end is not None and contents.end.get("discard"):
        remove_log(directory)
        return LogOutcome(episode_id, "removed", "discarded by the operator")
    recovered = contents.end is None
    episode = build_episode(contents, episode_id, recovered=recovered)
    if episode is None:
        remove_log(directory)
        return LogOutcome(episode_id, "removed", "no step was recorded")
    _add_episode(store, episode)
    remove_log(directory)
    if not recovered:
        return LogOutcome(episode_id, "finalized", f"{episode.num_steps} steps")
    lost = ", torn tail cut off" if contents.torn else ""
    return LogOutcome(
        episode_id,
        "recovered",
        f"{episode.num_steps} steps, cut at {episode.meta.extra['cut_at']:.3f}{lost}",
    )


def _add_episode(store: Store, episode: Episode) -> None:
    """Store ``episode``; a disk that cannot hold its file raises :class:`DiskFullError` (checked
    first: an HDF5 write that runs out of space fails noisily, half-way through)."""
    need, free = episode_file_bytes(episode), free_bytes(store.root)
    what = f"episode {episode.meta.episode_id} needs about {megabytes(need)}, {megabytes(free)} free"
    retry = "run `takeover doctor --repair`"
    if free < need:
        raise DiskFullError(full_disk_line(store.root, what, retry))
    try:
        store.add_episode(episode)
    except (OSError, RuntimeError) as exc:  # h5py reports a failed write as either
        if disk_full(exc) or free_bytes(store.root) < need:
            raise DiskFullError(full_disk_line(store.root, what, retry)) from None
        raise


def recover_all(store: Store) -> list[LogOutcome]:
    """Recover every unfinished attempt and clear leftovers of interrupted removals and writes.
    Raises :class:`DiskFullError` when the disk cannot hold a recovered episode (every other one
    would fail the same way)."""
    for trash in leftover_trash(store):
        shutil.rmtree(trash, ignore_errors=True)
    for line in store.remove_stale_temp_files():
        log.info("recovery: %s", line)
    outcomes = []
    for directory in pending_logs(store):
        try:
            outcomes.append(store_log(store, directory))
        except DiskFullError:
            raise
        except Exception as exc:  # one bad log must not stop the others; doctor reports it
            log.error("could not recover %s: %s", directory, exc)
            log.debug("recovery of %s", directory, exc_info=True)
            outcomes.append(LogOutcome(directory.name, "failed", str(exc)))
    for o in outcomes:
        log.info("recovery: %s", o.line())
    return outcomes
