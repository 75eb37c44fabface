"""What changed between two versions: episodes added, removed, relabelled, re-derived or trimmed,
and the totals a training run would notice (episodes, steps, verdicts).

Versions are compared by their manifests only (the catalog; no episode file is opened). For an
episode in both:

- *relabelled*: the label a training run reads differs (outcome or success flag), or the label
  revision pinned (``labels``);
- *re-derived*: its file digest differs (the same id, other bytes: re-derived or repaired data),
  or the derivations or transcoded videos it pins;
- *trimmed*: the step range the version takes of it differs.
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
class Rederived:
    episode_id: str
    what: str
    """What differs: 'other data', 'derivations', 'videos' (joined by ', ')."""


@dataclass(frozen=True)
class Trimmed:
    episode_id: str
    before: tuple[int, int]
    after: tuple[int, int]
    """``[start, stop)`` step ranges (the whole episode when it is not trimmed)."""


@dataclass(frozen=True)
class VersionDiff:
    added: tuple[ManifestEntry, ...]
    removed: tuple[ManifestEntry, ...]
    relabelled: tuple[Relabelled, ...]
    rederived: tuple[Rederived, ...]
    trimmed: tuple[Trimmed, ...]
    totals: dict[str, tuple[int, int]]
    """Total -> (in the first version, in the second), only those that changed."""

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.relabelled or self.rederived or self.trimmed)

    def counts(self) -> str:
        """'added 2, removed 0, relabelled 1, re-derived 0, trimmed 0'."""
        n = (len(self.added), len(self.removed), len(self.relabelled), len(self.rederived), len(self.trimmed))
        return "added {}, removed {}, relabelled {}, re-derived {}, trimmed {}".format(*n)


def verdict(entry: ManifestEntry) -> str:
    """The episode's label as a training run reads it: the operator's outcome, else the station's flag."""
    if entry.outcome:
        return entry.outcome
    return "-" if entry.success is None else ("success" if entry.success else "failure")


def label(entry: ManifestEntry) -> str:
    """The verdict, and the label revision the version pins if any."""
    return f"{verdict(entry)} (labels {entry.labels})" if entry.labels else verdict(entry)


def _rederived(a: ManifestEntry, b: ManifestEntry) -> str:
    what = [
        name
        for name, differs in (
            ("other data", a.digest != b.digest),
            ("derivations", a.derivations != b.derivations),
            ("videos", a.videos != b.videos),
        )
        if differs
    ]
    return ", ".join(what)


def diff_manifests(a: Manifest, b: Manifest) -> VersionDiff:
    before = {e.episode_id: e for e in a.episodes}
    after = {e.episode_id: e for e in b.episodes}
    both = sorted(before.keys() & after.keys())
    relabelled = tuple(
        Relabelled(i, label(before[i]), label(after[i])) for i in both if label(before[i]) != label(after[i])
    )
    rederived = tuple(Rederived(i, what) for i in both if (what := _rederived(before[i], after[i])))
    trimmed = tuple(
        Trimmed(i, (before[i].start, before[i].stop), (after[i].start, after[i].stop))
        for i in both
        if (before[i].start, before[i].stop) != (after[i].start, after[i].stop)
    )
    totals: dict[str, tuple[int, int]] = {}
    for name, x, y in (
        ("episodes", len(a.episodes), len(b.episodes)),
        ("steps", a.num_steps, b.num_steps),
    ):
        if x != y:
            totals[name] = (x, y)
    labels_a, labels_b = Counter(map(verdict, a.episodes)), Counter(map(verdict, b.episodes))
    for name in sorted(labels_a.keys() | labels_b.keys()):
        if labels_a[name] != labels_b[name]:
            totals[name] = (labels_a[name], labels_b[name])
    return VersionDiff(
        added=tuple(after[i] for i in sorted(after.keys() - before.keys())),
        removed=tuple(before[i] for i in sorted(before.keys() - after.keys())),
        relabelled=relabelled,
        rederived=rederived,
        trimmed=trimmed,
        totals=totals,
    )
