"""`takeover data fsck`: verify everything a store holds, and say what to do about each problem.

On top of the consistency check (:mod:`takeover.storage.consistency`: every cataloged episode's
file and frame blobs present and hashing to their digests, orphan blobs, temporary files) it checks
what versions rely on:

- every frozen manifest still reads (a version stored as a delta is materialised from the full
  manifest under it) and still hashes to the digest it is stored under;
- every episode a version lists is in the catalog with the same file digest, and that file is
  present and intact; every derived blob it pins (:mod:`takeover.storage.derived`) is present
  and intact;
- every tag names a version the catalog holds.

Nothing is changed: each problem comes with the way out (``repair`` for what can be removed safely,
a copy of the store for what cannot be rebuilt from the store alone). The blob store may be a
local folder or an S3 bucket.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from takeover.storage.consistency import DEFAULT_GRACE_S, StoreReport
from takeover.storage.errors import UnknownEpisodeError
from takeover.storage.manifest_store import RESTORE_CATALOG
from takeover.storage.store import Store

RESTORE = "restore it from a copy of the store (it cannot be rebuilt from the store alone)"


@dataclass(frozen=True)
class Problem:
    what: str
    remedy: str

    def line(self) -> str:
        return f"{self.what}: {self.remedy}"


@dataclass
class FsckReport:
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What was seen and kept on purpose: blobs in flight (not problems)."""
    episodes: int = 0
    blobs_checked: int = 0
    versions: int = 0
    tags: int = 0

    @property
    def clean(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        return (
            f"{self.episodes} episodes, {self.blobs_checked} blobs, {self.versions} versions, "
            f"{self.tags} tags checked: "
            + ("no problems" if self.clean else f"{len(self.problems)} problem(s)")
        )


def fsck(store: Store, *, verify: bool = True, grace_s: float = DEFAULT_GRACE_S) -> FsckReport:
    """Check ``store`` (``verify``: re-hash every blob's bytes, else only see that each is there;
    an unreferenced blob younger than ``grace_s`` is in flight, a note, not a problem)."""
    base = store.check(verify=verify, grace_s=grace_s)
    report = FsckReport(episodes=base.episodes, blobs_checked=base.blobs_checked, notes=base.notes())
    report.problems += _consistency_problems(base)

    def problem(what: str) -> None:
        report.problems.append(Problem(what, RESTORE))

    videos = {eid: {(v.camera, v.digest) for v in vs} for eid, vs in store.catalog.videos_of().items()}
    versions: set[str] = set()
    derived: dict[str, str] = {}
    """Pinned derived blob -> what is wrong with it ('' for nothing)."""
    for digest, manifest, error in store.catalog.materialised_versions():
        report.versions += 1
        versions.add(digest)
        if error is not None:
            problem(str(error).removesuffix(f": {RESTORE_CATALOG}"))
        if manifest is None:
            continue
        for entry in manifest.episodes:
            where = f"version {digest[:12]}, episode {entry.episode_id}"
            try:
                record = store.catalog.get_episode(entry.episode_id)
            except UnknownEpisodeError:
                problem(f"{where}: not in the catalog")
                continue
            if record.blob_digest != entry.digest:
                problem(f"{where}: the catalog holds other data for it ({record.blob_digest[:12]})")
            elif entry.episode_id in base.damaged_episodes:
                problem(f"{where}: its data is damaged (above)")
            for camera, video in entry.videos:
                if (camera, video) not in videos.get(entry.episode_id, set()):
                    problem(f"{where}: pins a video of {camera} ({video[:12]}) the catalog does not record")
            for name, blob in entry.derivations:
                if blob not in derived:
                    derived[blob] = _derived_state(store, blob, verify)
                    report.blobs_checked += 1
                if derived[blob]:
                    problem(f"{where}: the derived blob of {name} it pins ({blob[:12]}) is {derived[blob]}")
    for tag in store.tags():
        report.tags += 1
        if tag.digest not in versions:
            problem(f"tag {tag.name}: names version {tag.digest[:12]}, which the catalog lacks")
    return report


def _derived_state(store: Store, digest: str, verify: bool) -> str:
    if not store.derived_blobs.has(digest):
        return "missing"
    return "corrupt" if verify and not store.derived_blobs.verify(digest) else ""


def _consistency_problems(base: StoreReport) -> list[Problem]:
    out = [Problem(line, RESTORE) for line in base.damaged]
    out += [
        Problem(
            f"orphan blob {digest[:12]}: referenced by nothing in the catalog, older than the grace period",
            "harmless (left by an interrupted add); `takeover doctor --repair` or `takeover data gc` "
            "removes it",
        )
        for digest in base.orphans
    ]
    out += [
        Problem(
            f"temporary file {path}", "left by an interrupted write; `takeover doctor --repair` removes it"
        )
        for path in base.temp_files
    ]
    return out
