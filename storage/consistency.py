"""Consistency check and repair of a store: every cataloged episode has its blobs, intact.

Problems found:

- an episode whose file is missing or does not hash to its digest;
- an episode whose frame blob or transcoded video is missing or does not hash to its digest;
- orphan blobs, referenced by nothing in the catalog (left by an interrupted add; harmless);
- temporary files left by interrupted writes (those no live writer holds a lock on).

On a shared store another station may have stored a blob a moment ago and not cataloged it yet:
an unreferenced blob younger than the grace period (``[store] grace_period``, 24 h by default;
its age from :meth:`BlobStore.modified`) is *in flight*, reported as such and never removed. The
blobs are listed before the catalog is read, so a blob cataloged in between is seen referenced.
"Referenced" is every digest any catalog table names and every blob a version pins
(:mod:`takeover.storage.references`); when a version's manifest cannot be read, no blob can be
proven unreferenced, and none is called an orphan.

Repair removes orphans and temporary files, and before removing a blob reads the catalog again
and takes its age again. A missing or corrupt blob cannot be rebuilt from the store alone; it
stays a problem to report (restore it from a copy).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from takeover.storage.blobs import BlobStore
from takeover.storage.catalog import Catalog
from takeover.storage.durations import DEFAULT_GRACE, describe_age, parse_duration
from takeover.storage.errors import BlobNotFoundError
from takeover.storage.tempfiles import remove_stale, stale

DEFAULT_GRACE_S = parse_duration(DEFAULT_GRACE)


@dataclass
class StoreReport:
    damaged: list[str] = field(default_factory=list)
    """One line per episode with a missing or corrupt file or frame blob."""
    orphans: list[str] = field(default_factory=list)
    """Digests of blobs nothing references, older than the grace period."""
    in_flight: list[tuple[str, float]] = field(default_factory=list)
    """(digest, age in seconds) of unreferenced blobs younger than the grace period: kept."""
    unproven: str = ""
    """Why no unreferenced blob can be called an orphan ('' when they can)."""
    temp_files: list[Path] = field(default_factory=list)
    damaged_episodes: set[str] = field(default_factory=set)
    """The ids of the episodes in ``damaged``."""
    episodes: int = 0
    blobs_checked: int = 0

    @property
    def healthy(self) -> bool:
        return not (self.damaged or self.orphans or self.temp_files)

    def lines(self) -> list[str]:
        out = [f"damaged: {d}" for d in self.damaged]
        out += [f"orphan blob: {d}" for d in self.orphans]
        out += [f"temporary file: {p}" for p in self.temp_files]
        return out

    def notes(self) -> list[str]:
        """What was seen and kept on purpose (not problems)."""
        out = [
            f"in flight: blob {d[:12]} written {describe_age(age)} ago, referenced by nothing yet "
            "(another station's episode being stored?): kept for the grace period"
            for d, age in self.in_flight
        ]
        if self.unproven:
            out.append(f"no blob is taken for an orphan: {self.unproven} (`takeover data fsck` says more)")
        return out


def check_store(
    root: Path,
    catalog: Catalog,
    blobs: BlobStore,
    *,
    verify: bool = True,
    grace_s: float = DEFAULT_GRACE_S,
    now: float | None = None,
) -> StoreReport:
    """Look at every cataloged episode and every blob; ``verify`` re-hashes each blob's bytes;
    unreferenced blobs younger than ``grace_s`` (at ``now``) are in flight, not orphans."""
    report = StoreReport()
    listed = list(blobs.digests())  # before the catalog is read: see the module's doc
    refs = catalog.references()

    def ok(digest: str) -> str:
        report.blobs_checked += 1
        if not blobs.has(digest):
            return "missing"
        if verify and not blobs.verify(digest):
            return "corrupt (its bytes do not match its hash)"
        return ""

    frame_blobs = catalog.frame_blobs()  # the catalog lists them: no episode file is opened
    for rec in catalog.list_episodes(deleted=None):
        report.episodes += 1
        problem = ok(rec.blob_digest)
        if problem:
            report.damaged.append(f"episode {rec.episode_id}: file {rec.blob_digest[:12]} {problem}")
            report.damaged_episodes.add(rec.episode_id)
        for digest in frame_blobs.get(rec.episode_id, ()):
            problem = ok(digest)
            if problem:
                report.damaged.append(f"episode {rec.episode_id}: frame blob {digest[:12]} {problem}")
                report.damaged_episodes.add(rec.episode_id)
    for episode_id, videos in catalog.videos_of().items():  # transcoded camera streams
        for video in videos:
            problem = ok(video.digest)
            if problem:
                report.damaged.append(
                    f"episode {episode_id}: video of {video.camera} {video.digest[:12]} {problem}"
                )
                report.damaged_episodes.add(episode_id)
    report.unproven = refs.unknown
    unreferenced = [d for d in listed if d not in refs.digests]
    if not refs.unknown:
        report.orphans, report.in_flight = split_by_age(blobs, unreferenced, grace_s, now)
    report.temp_files = stale_temp_files(root, blobs)
    return report


def split_by_age(
    blobs: BlobStore, digests: list[str], grace_s: float, now: float | None = None
) -> tuple[list[str], list[tuple[str, float]]]:
    """(blobs at least ``grace_s`` old, (blob, age) of the younger ones); a blob gone meanwhile is
    in neither."""
    at = time.time() if now is None else now
    old: list[str] = []
    young: list[tuple[str, float]] = []
    for digest in digests:
        try:
            age = at - blobs.modified(digest)
        except BlobNotFoundError:
            continue
        if age >= grace_s:
            old.append(digest)
        else:
            young.append((digest, age))
    return old, young


def stale_temp_files(root: Path, blobs: BlobStore) -> list[Path]:
    """Temporary files under the store that no live writer holds (see :mod:`.tempfiles`)."""
    temp_files = getattr(blobs, "temp_files", None)  # a local folder's; object stores have none
    temps = list(temp_files()) if temp_files is not None else []
    tmp_dir = root / "tmp"
    if tmp_dir.is_dir():
        temps += stale(sorted(tmp_dir.iterdir()))
    temps += stale(sorted(root.glob(".*.tmp")))
    return temps


def remove_stale_temp_files(root: Path, blobs: BlobStore) -> list[str]:
    """Delete the temporary files crashed writers left behind; one line per file removed."""
    return [f"removed temporary file {p}" for p in stale_temp_files(root, blobs) if remove_stale(p)]


def repair_store(
    report: StoreReport,
    catalog: Catalog,
    blobs: BlobStore,
    *,
    grace_s: float = DEFAULT_GRACE_S,
    now: float | None = None,
) -> list[str]:
    """Remove the orphans and temporary files ``report`` found; return what was done. Each orphan
    is checked again first: still referenced by nothing (the catalog read afresh) and still older
    than the grace period."""
    done = []
    if report.orphans:
        refs = catalog.references()
        if not refs.unknown:
            candidates = [d for d in report.orphans if d not in refs.digests]
            for digest in split_by_age(blobs, candidates, grace_s, now)[0]:
                blobs.remove(digest)
                done.append(f"removed orphan blob {digest}")
    report.orphans = []
    for p in report.temp_files:
        if remove_stale(p):
            done.append(f"removed temporary file {p}")
    report.temp_files = []
    return done
