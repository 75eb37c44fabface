"""What changed between two versions: episodes added, removed, relabelled or re-derived, and the
totals a training run would notice (episodes, steps, verdicts).

Versions are compared by their manifests only (the catalog; no episode file is opened): an
episode in both whose outcome or success flag differs is *relabelled*; one whose file digest
differs (the same episode id, other bytes: re-derived or repaired data) is *re-derived*.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from takeover.storage.manifest import Manifest, ManifestEntry


@dataclass(frozen=True)
class Relabelled:
    episode_id: str
    before: str
    after: str


@dataclass(frozen=True)
class VersionDiff:
    added: tuple[ManifestEntry, ...]
    removed: tuple[ManifestEntry, ...]
    relabelled: tuple[Relabelled, ...]
    rederived: tuple[str, ...]
    """Episode ids in both whose file digest differs."""
    totals: dict[str, tuple[int, int]]
    """Total -> (in the first version, in the second), only those that changed."""

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.relabelled or self.rederived)

    def counts(self) -> str:
        """'added 2, removed 0, relabelled 1, re-derived 0'."""
        n = (len(self.added), len(self.removed), len(self.relabelled), len(self.rederived))
        return "added {}, removed {}, relabelled {}, re-derived {}".format(*n)


def verdict(entry: ManifestEntry) -> str:
    """The episode's label as a training run reads it: the operator's outcome, else the station's flag."""
    if entry.outcome:
        return entry.outcome
    return "-" if entry.success is None else ("success" if entry.success else "failure")


def diff_manifests(a: Manifest, b: Manifest) -> VersionDiff:
    before = {e.episode_id: e for e in a.episodes}
    after = {e.episode_id: e for e in b.episodes}
    both = sorted(before.keys() & after.keys())
    relabelled = tuple(
        Relabelled(i, verdict(before[i]), verdict(after[i]))
        for i in both
        if verdict(before[i]) != verdict(after[i])
    )
    totals: dict[str, tuple[int, int]] = {}
    for name, x, y in (
        ("episodes", len(a.episodes), len(b.episodes)),
        ("steps", a.num_steps, b.num_steps),
    ):
        if x != y:
            totals[name] = (x, y)
    labels_a, labels_b = Counter(map(verdict, a.episodes)), Counter(map(verdict, b.episodes))
    for label in sorted(labels_a.keys() | labels_b.keys()):
        if labels_a[label] != labels_b[label]:
            totals[label] = (labels_a[label], labels_b[label])
    return VersionDiff(
        added=tuple(after[i] for i in sorted(after.keys() - before.keys())),
        removed=tuple(before[i] for i in sorted(before.keys() - after.keys())),
        relabelled=relabelled,
        rederived=tuple(i for i in both if before[i].digest != after[i].digest),
        totals=totals,
    )
