"""Consistency check and repair of a store: every cataloged episode has its blobs, intact.

Problems found:

- an episode whose file is missing or does not hash to its digest;
- an episode whose frame blob or transcoded video is missing or does not hash to its digest;
- orphan blobs, referenced by no cataloged episode (left by an interrupted add; harmless);
- temporary files left by interrupted writes (those no live writer holds a lock on).

Repair removes orphans and temporary files. A missing or corrupt blob cannot be rebuilt from the
store alone; it stays a problem to report (restore it from a copy). Do not repair while a
recorder writes into the same store: a blob adopted a moment before its catalog row would be
seen as an orphan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from takeover.storage.blobs import BlobStore
from takeover.storage.catalog import Catalog
from takeover.storage.tempfiles import remove_stale, stale


@dataclass
class StoreReport:
    damaged: list[str] = field(default_factory=list)
    """One line per episode with a missing or corrupt file or frame blob."""
    orphans: list[str] = field(default_factory=list)
    """Digests of blobs no episode references."""
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


def check_store(root: Path, catalog: Catalog, blobs: BlobStore, *, verify: bool = True) -> StoreReport:
    """Look at every cataloged episode and every blob; ``verify`` re-hashes each blob's bytes."""
    report = StoreReport()
    referenced: set[str] = set()

    def ok(digest: str) -> str:
        report.blobs_checked += 1
        if not blobs.has(digest):
            return "missing"
        if verify and not blobs.verify(digest):
            return "corrupt (its bytes do not match its hash)"
        return ""

    frame_blobs = catalog.frame_blobs()  # the catalog lists them: no episode file is opened
    for rec in catalog.list_episodes():
        report.episodes += 1
        referenced.add(rec.blob_digest)
        problem = ok(rec.blob_digest)
        if problem:
            report.damaged.append(f"episode {rec.episode_id}: file {rec.blob_digest[:12]} {problem}")
            report.damaged_episodes.add(rec.episode_id)
        for digest in frame_blobs.get(rec.episode_id, ()):
            referenced.add(digest)
            problem = ok(digest)
            if problem:
                report.damaged.append(f"episode {rec.episode_id}: frame blob {digest[:12]} {problem}")
                report.damaged_episodes.add(rec.episode_id)
    for episode_id, videos in catalog.videos_of().items():  # transcoded camera streams
        for video in videos:
            referenced.add(video.digest)
            problem = ok(video.digest)
            if problem:
                report.damaged.append(
                    f"episode {episode_id}: video of {video.camera} {video.digest[:12]} {problem}"
                )
                report.damaged_episodes.add(episode_id)
    report.orphans = [d for d in blobs.digests() if d not in referenced]
    report.temp_files = stale_temp_files(root, blobs)
    return report


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


def repair_store(report: StoreReport, blobs: BlobStore) -> list[str]:
    """Remove the orphans and temporary files ``report`` found; return what was done."""
    done = []
    for digest in report.orphans:
        blobs.remove(digest)
        done.append(f"removed orphan blob {digest}")
    report.orphans = []
    for p in report.temp_files:
        if remove_stale(p):
            done.append(f"removed temporary file {p}")
    report.temp_files = []
    return done
