"""`takeover data gc`: remove what deleted episodes and interrupted writes leave behind.

Two kinds of blobs go:

- the blobs of episodes deleted (:mod:`takeover.storage.deletions`) longer ago than the retention
  period and held by no version: the episode file, its frame blobs, the blobs derived from it and
  any other blob a catalog row of it names (transcoded videos, ...); their catalog rows go first;
- orphan blobs (referenced by nothing in the catalog) older than the grace period, in the store's
  blobs and its derived blobs.

Never removed: a blob any catalog table names or any version pins (read again after the rows are
gone), a blob younger than the grace period (another station's episode in flight), and anything at
all when a version's manifest cannot be read (what it pins is unknown: nothing can be proven
unreferenced). The catalog rows go before the blobs, so an interruption leaves at worst orphans
that an old age lets the next run remove.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from takeover.storage.blobs import BlobStore
from takeover.storage.durations import describe_age
from takeover.storage.errors import BlobNotFoundError, StorageError
from takeover.storage.store import Store

_PROGRESS_EVERY_S = 2.0


@dataclass(frozen=True)
class Removal:
    what: str
    """'episode ep-1', or 'orphan blob, 3 d old'."""
    digest: str
    size: int


@dataclass
class GcReport:
    dry_run: bool
    episodes: list[str] = field(default_factory=list)
    """The deleted episodes whose rows and blobs went (or would go)."""
    removals: list[Removal] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    """One line for each deleted episode or blob kept, and why."""

    @property
    def bytes(self) -> int:
        return sum(r.size for r in self.removals)

    def lines(self) -> list[str]:
        verb = "would remove" if self.dry_run else "removed"
        out = [f"{verb} {r.digest[:12]}  {_size(r.size):>9}  {r.what}" for r in self.removals]
        out += [f"kept: {k}" for k in self.kept]
        return out

    def summary(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        return (
            f"{verb} {len(self.removals)} blob(s), {_size(self.bytes)}, of {len(self.episodes)} deleted "
            f"episode(s) and orphans" + (" (dry run: nothing was changed)" if self.dry_run else "")
        )


def _size(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def collect_garbage(
    store: Store,
    *,
    retention_s: float,
    grace_s: float,
    dry_run: bool = False,
    now: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> GcReport:
    """Remove (``dry_run``: only list) the blobs of episodes deleted longer than ``retention_s``
    ago that no version holds, and orphan blobs older than ``grace_s``; see the module's doc."""
    if not dry_run:
        store.require_writable("remove deleted episodes and orphan blobs")
    at = time.time() if now is None else now
    report = GcReport(dry_run=dry_run)
    stores = (store.blobs, store.derived_blobs)
    listed = [(blobs, d) for blobs in stores for d in blobs.digests()]  # before the catalog is read
    refs = store.catalog.references()
    if refs.unknown:
        raise StorageError(
            f"cannot tell which blobs every version holds ({refs.unknown}): nothing was removed; "
            "`takeover data fsck` says what is wrong"
        )
    due = []
    for episode_id, d in sorted(store.catalog.deletions().items()):
        if at - d.deleted_at < retention_s:
            report.kept.append(
                f"episode {episode_id}: deleted {describe_age(at - d.deleted_at)} ago, within retention"
            )
        elif episode_id in refs.held:
            report.kept.append(f"episode {episode_id}: a version holds it (it stays readable)")
        else:
            due.append(episode_id)
    owned = store.catalog.blob_owners(due)
    if dry_run:
        report.episodes = due
        remaining = store.catalog.references(exclude=due)
    else:
        report.episodes = store.catalog.forget_episodes(due, deleted_before=at - retention_s)
        remaining = store.catalog.references()
    if remaining.unknown:  # a version that read a moment ago does not now: stop
        raise StorageError(
            f"cannot tell which blobs every version holds ({remaining.unknown}): nothing removed"
        )
    forgotten = set(report.episodes)
    last = time.monotonic()
    for k, (blobs, digest) in enumerate(listed):
        if progress is not None and time.monotonic() - last >= _PROGRESS_EVERY_S:
            progress(f"gc: looked at {k} of {len(listed)} blobs, {len(report.removals)} to remove so far")
            last = time.monotonic()
        owner = owned.get(digest)
        if digest in remaining.digests or (owner is not None and owner not in forgotten):
            continue
        try:
            age = at - blobs.modified(digest)
        except BlobNotFoundError:  # removed meanwhile
            continue
        if age < grace_s:
            whose = f"of deleted episode {owner}, " if owner else ""
            report.kept.append(
                f"blob {digest[:12]}: {whose}written {describe_age(age)} ago, within the grace period "
                + ("(a later gc removes it)" if owner else "(in flight: another station's episode?)")
            )
        else:
            _remove(
                report,
                blobs,
                digest,
                f"episode {owner}" if owner else f"orphan blob, {describe_age(age)} old",
            )
    return report


def _remove(report: GcReport, blobs: BlobStore, digest: str, what: str) -> None:
    try:
        size = blobs.size(digest)
    except BlobNotFoundError:
        return
    if not report.dry_run:
        blobs.remove(digest)
    report.removals.append(Removal(what, digest, size))
