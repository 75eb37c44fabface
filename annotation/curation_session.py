"""What the curation screen does with a store, Qt-free: read the episodes' facts once, select
with queries over them, freeze a selection, list the versions with their lineage, diff two.

The screen runs one :class:`CurationSession` on a worker thread that owns the store; the window
only sends it requests and shows the answers (app/gui/curate/). Each method is what one request
does; none of them keeps anything Qt needs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from takeover.annotation.curation import FIELDS, EpisodeFacts, Selection, freeze, gather, pick
from takeover.annotation.labels import Rule
from takeover.annotation.query_language import Kind, Node, value_text
from takeover.storage.diff import VersionDiff, diff_manifests, verdict
from takeover.storage.store import Store

PICKER_VALUES = 60
"""At most this many values of a field are offered by the screen's picker (the most common first)."""


@dataclass(frozen=True)
class Frozen:
    """A selection frozen as a version."""

    tag: str
    digest: str
    episodes: int
    steps: int
    labels_pinned: int
    """Episodes whose label the version pins (their annotators' revisions, not the verdict)."""


@dataclass(frozen=True)
class VersionInfo:
    """A tagged version as the screen lists it."""

    tag: str
    digest: str
    created_at: float
    message: str
    query: str
    """The query that chose its episodes ('' when they were chosen otherwise)."""
    episodes: int
    steps: int
    parent: str
    """The parent version's digest ('' for none)."""
    parent_tags: tuple[str, ...]
    """The tags that name the parent."""


class CurationSession:
    """Curation requests against ``store``, whose facts are read once (:meth:`reload` reads them
    again, and a rule change reads the labels anew)."""

    def __init__(self, store: Store, rule: Rule = Rule.LEAD) -> None:
        self.store = store
        self.rule = rule
        self._facts: list[EpisodeFacts] | None = None

    @property
    def facts(self) -> list[EpisodeFacts]:
        if self._facts is None:
            self._facts = gather(self.store, self.rule)
        return self._facts

    def reload(self, rule: Rule | None = None) -> int:
        """Read the episodes' facts again (with ``rule``, if given); returns how many there are."""
        if rule is not None:
            self.rule = rule
        self._facts = None
        return len(self.facts)

    def select(self, query: str | Node) -> Selection:
        """The episodes ``query`` matches, and their statistics."""
        return pick(self.facts, query)

    def picker_values(self) -> dict[str, list[str]]:
        """Field -> the values it takes in the store, as the query language writes them, most
        common first (text, word, set and date fields)."""
        out: dict[str, list[str]] = {}
        for spec in FIELDS:
            if spec.kind not in (Kind.TEXT, Kind.WORD, Kind.SET, Kind.DATE):
                continue
            counts: dict[str, int] = {}
            for e in self.facts:
                value = getattr(e, spec.name)
                items = value if spec.kind is Kind.SET else [value]
                for v in items:
                    if v is None or v == "":
                        continue
                    shown = value_text(v, spec)
                    counts[shown] = counts.get(shown, 0) + 1
            ordered = sorted(counts, key=lambda v: (-counts[v], v))
            if spec.kind is Kind.WORD and spec.words:  # every word of a vocabulary, used or not
                ordered += [w for w in (value_text(w, spec) for w in spec.words) if w not in counts]
            if spec.kind is Kind.DATE:
                ordered = sorted(counts, reverse=True)
            out[spec.name] = ordered[:PICKER_VALUES]
        return out

    def freeze(self, tag: str, query: str, message: str = "", parent: str = "") -> Frozen:
        """Freeze the episodes ``query`` matches now as version ``tag`` (reads the store afresh:
        what is frozen is what the query matches at this moment)."""
        digest, manifest, _ = freeze(self.store, tag, query, message=message, rule=self.rule, parent=parent)
        pinned = sum(1 for e in manifest.episodes if e.labels)
        return Frozen(tag, digest, len(manifest.episodes), manifest.num_steps, pinned)

    def versions(self) -> list[VersionInfo]:
        """Every tagged version, newest first, with the tags of its parent."""
        tags = self.store.tags()
        names: dict[str, list[str]] = {}
        for t in tags:
            names.setdefault(t.digest, []).append(t.name)
        out = []
        for t in reversed(tags):
            version = self.store.catalog.get_version(t.digest)
            m = version.manifest
            made = m.created_from
            out.append(
                VersionInfo(
                    tag=t.name,
                    digest=t.digest,
                    created_at=version.created_at,
                    message=version.message,
                    query=str(made.get("query", "")) if made.get("selection") == "query" else "",
                    episodes=len(m.episodes),
                    steps=m.num_steps,
                    parent=m.parent,
                    parent_tags=tuple(names.get(m.parent, [])) if m.parent else (),
                )
            )
        return out

    def diff(self, first: str, second: str) -> list[str]:
        """What changed from version ``first`` to ``second`` (tags), one line each."""
        a, b = self.store.resolve(first), self.store.resolve(second)
        head = f"{first} ({a.digest[:12]}) -> {second} ({b.digest[:12]})"
        return [head, *diff_lines(diff_manifests(a.manifest, b.manifest), same=a.digest == b.digest)]


def diff_lines(change: VersionDiff, *, same: bool = False) -> list[str]:
    """A diff as `takeover data diff` prints it: one line per episode added (+), removed (-),
    relabelled (~), re-derived (*) or trimmed (>), then the counts and the totals that changed."""
    if change.empty:
        return ["the same version" if same else "same episodes, same labels, same data"]
    lines = [f"+ {e.episode_id}  {e.num_steps} steps  {verdict(e)}" for e in change.added]
    lines += [f"- {e.episode_id}  {e.num_steps} steps  {verdict(e)}" for e in change.removed]
    lines += [f"~ {r.episode_id}  relabelled {r.before} -> {r.after}" for r in change.relabelled]
    lines += [f"* {d.episode_id}  re-derived ({d.what})" for d in change.rederived]
    lines += [
        f"> {t.episode_id}  trimmed steps {t.before[0]}:{t.before[1]} -> {t.after[0]}:{t.after[1]}"
        for t in change.trimmed
    ]
    lines += ["", change.counts()]
    lines += [f"{name:<14}{x:>8} -> {y:<8} ({y - x:+d})" for name, (x, y) in change.totals.items()]
    return lines


def created_text(t: float) -> str:
    """A version's creation time as the screen shows it (local time, to the minute)."""
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")


def tags_of(versions: Sequence[VersionInfo]) -> list[str]:
    return [v.tag for v in versions]
