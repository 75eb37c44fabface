"""The episode list of the review screen, without Qt: rows, their columns, filters and sorting.

:meth:`ReviewList.load` asks the catalog twice, whatever the number of episodes: once for the
episodes (:meth:`Store.list_episodes <takeover.storage.store.Store.list_episodes>`) and once for
every annotator's newest revision of them (``store.labels.heads``). Everything after that (the
label that counts, agreement, filters, sorting) is done here in Python, so the screen can filter
and sort a thousand rows on every key press without touching the disk, and this module can be
tested without a window. After a label is written, :meth:`ReviewList.update` swaps one row for its
new heads.

A row's columns are defined once (:data:`COLUMNS`): the header, the text shown and the key the
list is sorted by.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from takeover.annotation.curation import label_source
from takeover.annotation.labels import (
    CAUTION,
    Resolution,
    Rule,
    agreement,
    disagrees,
    resolve,
    shown,
    voters,
)
from takeover.storage.catalog import EpisodeRecord
from takeover.storage.label_revisions import LabelRevision

if TYPE_CHECKING:
    from takeover.storage.store import Store

UNLABELLED = ""
"""The outcome of an episode without any revision (no verdict, no flag, no review)."""


@dataclass(frozen=True)
class ReviewRow:
    """One episode as the list shows it: its catalog record and its label revisions' heads."""

    record: EpisodeRecord
    heads: tuple[LabelRevision, ...]
    """Each annotator's newest revision, oldest first."""
    resolution: Resolution | None
    """The label that counts under the list's rule (None: no revision)."""
    mine: LabelRevision | None
    """The newest revision of the annotator using the screen (None: not labelled by them)."""

    @property
    def episode_id(self) -> str:
        return self.record.episode_id

    @property
    def outcome(self) -> str:
        """The outcome that counts ('' for none)."""
        return self.resolution.outcome if self.resolution is not None else UNLABELLED

    @property
    def source(self) -> str:
        """Who gave the label that counts ('' for none); see :func:`label_source`."""
        return label_source(self.resolution, self.record.outcome) if self.resolution is not None else ""

    @property
    def voters(self) -> list[LabelRevision]:
        return voters(self.heads)

    @property
    def agreement(self) -> float:
        return agreement(self.heads)

    @property
    def disagrees(self) -> bool:
        return disagrees(self.heads)

    @property
    def annotators(self) -> frozenset[str]:
        """Who has labelled the episode (the operator's verdict included)."""
        return frozenset(h.annotator for h in self.heads)

    @property
    def duration_s(self) -> float:
        return self.record.ended_at - self.record.started_at


@dataclass(frozen=True)
class Column:
    """One column of the list: its header, its text and the key rows are sorted by."""

    name: str
    header: str
    text: Callable[[ReviewRow], str]
    key: Callable[[ReviewRow], Any]
    numeric: bool = False
    """Right-aligned on screen."""


def _date(row: ReviewRow) -> str:
    """Month, day and time (the year is in the tooltip and the episode's header)."""
    return time.strftime("%m-%d %H:%M", time.localtime(row.record.started_at))


def _outcome_rank(outcome: str) -> int:
    """The most cautious outcome first (failure, near-success, success), unlabelled last."""
    return CAUTION.index(outcome) if outcome in CAUTION else len(CAUTION)


def _agree(row: ReviewRow) -> str:
    voting = row.voters
    if not voting:
        return "-"
    return f"{round(row.agreement * len(voting))}/{len(voting)}"


def _record_column(name: str, attr: str, *, numeric: bool = False) -> Column:
    """A column showing one field of the catalog record, sorted by it, then by date."""
    return Column(
        name,
        name,
        lambda r: str(getattr(r.record, attr)),
        lambda r: (getattr(r.record, attr), r.record.started_at, r.episode_id),
        numeric,
    )


COLUMNS: tuple[Column, ...] = (
    Column("date", "date", _date, lambda r: (r.record.started_at, r.episode_id)),
    Column("episode", "episode", lambda r: r.episode_id, lambda r: r.episode_id),
    Column(
        "label",
        "label",
        lambda r: shown(r.outcome) if r.outcome else "-",
        lambda r: (_outcome_rank(r.outcome), r.record.started_at),
    ),
    Column("source", "source", lambda r: r.source or "-", lambda r: (r.source, r.record.started_at)),
    Column("agree", "agree", _agree, lambda r: (r.agreement, r.record.started_at), numeric=True),
    Column(
        "mine",
        "mine",
        lambda r: shown(r.mine.outcome) if r.mine is not None else "-",
        lambda r: (_outcome_rank(r.mine.outcome) if r.mine is not None else len(CAUTION) + 1,),
    ),
    _record_column("takeovers", "num_takeovers", numeric=True),
    Column("duration", "secs", lambda r: f"{r.duration_s:.1f}", lambda r: (r.duration_s, r.episode_id), True),
    _record_column("steps", "num_steps", numeric=True),
    _record_column("operator", "operator"),
    _record_column("station", "station"),
    _record_column("policy", "policy_id"),
    _record_column("task", "task"),
)
"""The list's columns, left to right (the long task text last); 'mine' is the outcome the screen's
annotator gave."""
COLUMN_NAMES = tuple(c.name for c in COLUMNS)
_BY_NAME = {c.name: c for c in COLUMNS}


def column(name: str) -> Column:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"no column {name!r}; the columns are {', '.join(COLUMN_NAMES)}") from None


@dataclass(frozen=True)
class ReviewFilter:
    """Which episodes the list shows: every given condition must hold (None: any)."""

    task: str | None = None
    operator: str | None = None
    station: str | None = None
    policy: str | None = None
    label: str | None = None
    """An outcome ('success', 'near_success', 'failure'), or '' for the unlabelled."""
    annotator: str | None = None
    """Someone whose revision the episode has (the operator's verdict counts as theirs)."""
    intervention: bool | None = None
    """True: only attempts with a takeover; False: only attempts without one."""
    since: float | None = None
    """Started at or after this wall-clock time (seconds since the epoch)."""
    until: float | None = None
    """Started before this wall-clock time."""
    disagreement: bool = False
    """Only the episodes whose annotators disagree with nothing settling it (the review queue)."""
    todo: bool = False
    """Only the episodes the screen's annotator has not labelled yet."""

    def matches(self, row: ReviewRow) -> bool:
        r = row.record
        named = (
            (self.task, r.task),
            (self.operator, r.operator),
            (self.station, r.station),
            (self.policy, r.policy_id),
            (self.label, row.outcome),
        )
        if any(want is not None and want != have for want, have in named):
            return False
        if self.annotator is not None and self.annotator not in row.annotators:
            return False
        if self.intervention is not None and (r.num_takeovers > 0) != self.intervention:
            return False
        if self.since is not None and r.started_at < self.since:
            return False
        if self.until is not None and r.started_at >= self.until:
            return False
        if self.disagreement and not row.disagrees:
            return False
        return not (self.todo and row.mine is not None)


@dataclass
class ReviewList:
    """The episodes under review and their labels, as one annotator sees them."""

    annotator: str
    """Who uses the screen: their own revisions fill the 'mine' column and the ``todo`` filter."""
    rule: Rule = Rule.LEAD
    rows: dict[str, ReviewRow] = field(default_factory=dict)
    """Episode id -> row, in the catalog's order (oldest first)."""

    @classmethod
    def load(
        cls,
        store: Store,
        *,
        annotator: str,
        rule: Rule = Rule.LEAD,
        episode_ids: Sequence[str] | None = None,
    ) -> ReviewList:
        """The listed episodes of ``store`` (only ``episode_ids`` if given; deleted ones never):
        one catalog query for the episodes, one for the label heads."""
        records = store.list_episodes(episode_ids=episode_ids)
        heads = store.labels.heads(episode_ids) if records else {}
        out = cls(annotator, rule)
        for record in records:
            out.rows[record.episode_id] = out._row(record, heads.get(record.episode_id, []))
        return out

    def _row(self, record: EpisodeRecord, heads: Sequence[LabelRevision]) -> ReviewRow:
        own = [h for h in heads if h.annotator == self.annotator and h.role != "operator"]
        return ReviewRow(record, tuple(heads), resolve(heads, self.rule), own[-1] if own else None)

    def update(self, episode_id: str, heads: Sequence[LabelRevision]) -> ReviewRow:
        """Replace the row of ``episode_id`` with one made from its new ``heads``."""
        row = self.rows[episode_id]
        new = self.rows[episode_id] = self._row(row.record, heads)
        return new

    def select(
        self, flt: ReviewFilter | None = None, sort: str = "date", reverse: bool = False
    ) -> list[ReviewRow]:
        """The rows ``flt`` lets through, sorted by column ``sort``."""
        key = column(sort).key
        rows = [r for r in self.rows.values() if flt is None or flt.matches(r)]
        rows.sort(key=key, reverse=reverse)
        return rows

    def choices(self) -> dict[str, list[str]]:
        """The values each named filter can take here, sorted: task, operator, station, policy,
        annotator."""
        rows = list(self.rows.values())
        return {
            "task": _distinct(r.record.task for r in rows),
            "operator": _distinct(r.record.operator for r in rows),
            "station": _distinct(r.record.station for r in rows),
            "policy": _distinct(r.record.policy_id for r in rows),
            "annotator": _distinct(a for r in rows for a in r.annotators),
        }


def _distinct(values: Iterable[str]) -> list[str]:
    return sorted(set(values))
