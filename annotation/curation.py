"""Curation: which episodes a query picks, what they add up to, and freezing them as a version.
Qt-free; `takeover data query`, `data commit --query` and the curation screen use it.

The episode fields a query may name are the query fields of :class:`EpisodeFacts` (metadata, the
label that counts, agreement between annotators, interventions, human steps, derived results);
the language itself is :mod:`takeover.annotation.query_language`. docs/curation.md lists them.

Everything a query or the statistics need is read in four catalog queries, whatever the number
of episodes: the episodes, each annotator's newest label revision, the control events of the
episodes with a takeover, and the names of the derivations stored. No episode file is opened.
The human steps come from the control events: every change of who drives is a recorded event at
the first step taken under the new mode, so replaying them gives the steps the human drove, equal
to counting ``control_source == HUMAN`` in the episode file (a test replays the real state machine).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import Executable, select
from sqlalchemy.exc import DBAPIError

from takeover.annotation.derivation_catalog import derivations_table
from takeover.annotation.labels import (
    CAUTION,
    Resolution,
    Rule,
    agreement,
    disagrees,
    resolve,
    version_labels,
    voters,
)
from takeover.annotation.query_language import FieldSpec, Kind, Node, Unit, matcher, to_text
from takeover.annotation.query_parser import parse
from takeover.storage.catalog import EpisodeRecord
from takeover.storage.catalog_db import translate
from takeover.storage.derived import DerivationPins
from takeover.storage.errors import EmptySelectionError
from takeover.storage.label_revisions import OUTCOMES, QUALITIES, LabelRevision, operator_verdict
from takeover.storage.manifest import Manifest
from takeover.storage.schema import END_REASONS, EventKind
from takeover.storage.store import Store
from takeover.storage.tables import EpisodeRow, EventRow

SOURCES = ("lead", "majority", "annotator", "operator", "station")
"""Who gave the label that counts (see :func:`label_source`)."""
CONTROL_EVENTS = (
    EventKind.TAKEOVER,
    EventKind.HANDBACK,
    EventKind.HOLD,
    EventKind.RESUME,
    EventKind.ESTOP,
    EventKind.RESET,
    EventKind.RAMP_END,
)
"""The events that change who drives."""


def _query(kind: Kind, doc: str, **spec: Any) -> dict[str, Any]:
    """The metadata of a dataclass field that queries may name (the field's name is its name)."""
    return {"query": (kind, doc, spec)}


@dataclass(frozen=True, kw_only=True)
class EpisodeFacts:
    """What curation knows of an episode: one attribute per query field, and what they were read from."""

    id: str = field(metadata=_query(Kind.TEXT, "the episode's id", aliases=("episode", "episode_id")))
    task: str = field(metadata=_query(Kind.TEXT, "the task text"))
    operator: str = field(metadata=_query(Kind.TEXT, "who ran the attempt"))
    station: str = field(metadata=_query(Kind.TEXT, "the station it was recorded at"))
    robot: str = field(metadata=_query(Kind.TEXT, "the robot"))
    policy: str = field(metadata=_query(Kind.TEXT, "the policy's id", aliases=("policy_id",)))
    date: dt.date = field(metadata=_query(Kind.DATE, "the day it started (local time)", aliases=("day",)))
    started: float = field(metadata=_query(Kind.TIME, "when it started (local time)", aliases=("time",)))
    duration: float = field(metadata=_query(Kind.NUMBER, "seconds from start to end", unit=Unit.SECONDS))
    steps: int = field(metadata=_query(Kind.NUMBER, "recorded steps"))
    rate: float = field(metadata=_query(Kind.NUMBER, "control rate in Hz"))
    seed: int | None = field(metadata=_query(Kind.NUMBER, "the scene's seed", nullable=True))
    end_reason: str | None = field(
        metadata=_query(
            Kind.WORD, "why it ended", words=tuple(END_REASONS), nullable=True, aliases=("ended",)
        )
    )
    recovered: bool = field(metadata=_query(Kind.BOOL, "recovered after a crash (cut short)"))
    label: str | None = field(
        metadata=_query(
            Kind.WORD,
            "the outcome that counts (resolved)",
            words=OUTCOMES,
            nullable=True,
            aliases=("outcome",),
        )
    )
    source: str | None = field(
        metadata=_query(Kind.WORD, "who gave that label", words=SOURCES, nullable=True)
    )
    verdict: str | None = field(
        metadata=_query(Kind.WORD, "the operator's verdict at the end", words=OUTCOMES, nullable=True)
    )
    quality: str | None = field(
        metadata=_query(Kind.WORD, "a success's quality", words=QUALITIES, nullable=True)
    )
    category: str | None = field(
        metadata=_query(Kind.WORD, "a failure's category", nullable=True, aliases=("failure_category",))
    )
    progress: int | None = field(
        metadata=_query(Kind.NUMBER, "how far it got, in %", unit=Unit.PERCENT, nullable=True)
    )
    tags: frozenset[str] = field(
        metadata=_query(Kind.SET, "the tags of the label that counts", aliases=("tag",))
    )
    notes: str = field(metadata=_query(Kind.TEXT, "the notes of the label that counts", aliases=("note",)))
    annotator: frozenset[str] = field(
        metadata=_query(Kind.SET, "everyone with a current label revision (operator too)")
    )
    annotators: int = field(metadata=_query(Kind.NUMBER, "how many annotators vote on the label"))
    agreement: float = field(
        metadata=_query(Kind.NUMBER, "share of voters giving the most common outcome", unit=Unit.FRACTION)
    )
    disagreement: bool = field(
        metadata=_query(Kind.BOOL, "in the disagreement queue (voters differ, no newer lead's word)")
    )
    interventions: int = field(metadata=_query(Kind.NUMBER, "takeovers", aliases=("takeovers",)))
    handbacks: int = field(metadata=_query(Kind.NUMBER, "hand-backs"))
    has_intervention: bool = field(metadata=_query(Kind.BOOL, "at least one takeover"))
    human_steps: int = field(metadata=_query(Kind.NUMBER, "steps the human drove"))
    human_fraction: float = field(
        metadata=_query(Kind.NUMBER, "share of steps the human drove", unit=Unit.FRACTION)
    )
    derived: frozenset[str] = field(
        metadata=_query(Kind.SET, "names of the derivations stored (boundary_smoothing, training_labels)")
    )

    record: EpisodeRecord = field(repr=False)
    resolution: Resolution | None = field(repr=False)
    heads: tuple[LabelRevision, ...] = field(repr=False)


def _specs() -> tuple[FieldSpec, ...]:
    out = []
    for f in fields(EpisodeFacts):
        if "query" in f.metadata:
            kind, doc, spec = f.metadata["query"]
            out.append(FieldSpec(f.name, kind, doc, **spec))
    return tuple(out)


FIELDS: tuple[FieldSpec, ...] = _specs()
"""The fields a curation query may name."""


def parse_query(text: str) -> Node:
    """The query as a tree (:class:`~takeover.annotation.query_language.QueryError` if it does not read)."""
    return parse(text, FIELDS)


def query_text(node: Node) -> str:
    """The query written out (parses back to ``node``)."""
    return to_text(node, FIELDS)


def label_source(res: Resolution, operator_outcome: str) -> str:
    """Who gave the label that counts: 'lead', 'majority', 'annotator', 'operator', or 'station'
    when it is the operator's revision 1 made from the station's success flag alone
    (``operator_outcome``, the episode's own verdict, is then '')."""
    if res.source == "operator" and operator_outcome not in OUTCOMES:
        return "station"
    return res.source


# -- the human steps -----------------------------------------------------------------------------
def human_steps(events: Iterable[tuple[str, int]], num_steps: int) -> int:
    """Steps the human drove, from an episode's control events ``(kind, step)`` in recorded order.

    The mode changes at each event's step: a takeover hands control to the human; a hand-back,
    ramp end, e-stop or reset takes it away; a hold takes it away and a resume gives it back to
    whoever was held (the human only when they drove before the hold)."""
    human, held_human, since, total = False, False, 0, 0
    for kind, step in events:
        at = min(max(int(step), 0), num_steps)
        now = human
        if kind == EventKind.TAKEOVER:
            now = True
        elif kind == EventKind.HOLD:
            held_human, now = human, False
        elif kind == EventKind.RESUME:
            now = held_human
        elif kind in (EventKind.ESTOP, EventKind.RESET):
            held_human, now = False, False
        elif kind in (EventKind.HANDBACK, EventKind.RAMP_END):
            now = False
        if human and not now:
            total += at - since
        elif now and not human:
            since = at
        human = now
    if human:
        total += num_steps - since
    return total


def _control_events(store: Store) -> dict[str, list[tuple[str, int]]]:
    """Episode id -> its control events (kind, step) in recorded order, for the episodes with a
    takeover (no other episode has a human step). One query."""
    t = EventRow
    with_takeover = select(EpisodeRow.episode_id).where(EpisodeRow.num_takeovers > 0)
    q = (
        select(t.episode_id, t.kind, t.step)
        .where(t.kind.in_([str(k) for k in CONTROL_EVENTS]), t.episode_id.in_(with_takeover))
        .order_by(t.episode_id, t.seq)
    )
    out: dict[str, list[tuple[str, int]]] = {}
    for episode_id, kind, step in _rows(store, q):
        out.setdefault(episode_id, []).append((kind, step))
    return out


def _rows(store: Store, query: Executable) -> list[tuple[Any, ...]]:
    """The rows of a read of the catalog (a database error as one line, as the catalog's own)."""
    try:
        with store.catalog.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query)]
    except DBAPIError as exc:
        raise translate(exc, store.catalog.url) from None


def _derived_names(store: Store) -> dict[str, frozenset[str]]:
    t = derivations_table
    q = select(t.c.episode_id, t.c.name).distinct()
    out: dict[str, set[str]] = {}
    for episode_id, name in _rows(store, q):
        out.setdefault(episode_id, set()).add(name)
    return {k: frozenset(v) for k, v in out.items()}


# -- facts ---------------------------------------------------------------------------------------
def facts_of(
    record: EpisodeRecord,
    heads: Sequence[LabelRevision],
    rule: Rule = Rule.LEAD,
    human: int = 0,
    derived: frozenset[str] = frozenset(),
) -> EpisodeFacts:
    """The facts of one episode, from its catalog record, its annotators' newest revisions, its
    human steps and the names of its derivations."""
    res = resolve(heads, rule)
    label = res.label if res is not None else None
    verdict = operator_verdict(record)
    voting = voters(heads)
    return EpisodeFacts(
        id=record.episode_id,
        task=record.task,
        operator=record.operator,
        station=record.station,
        robot=record.robot,
        policy=record.policy_id,
        date=dt.datetime.fromtimestamp(record.started_at).date(),
        started=record.started_at,
        duration=record.ended_at - record.started_at,
        steps=record.num_steps,
        rate=record.rate_hz,
        seed=record.seed,
        end_reason=record.end_reason or None,
        recovered=record.recovered,
        label=res.outcome if res is not None else None,
        source=label_source(res, record.outcome) if res is not None else None,
        verdict=verdict.outcome if verdict is not None else None,
        quality=label.quality if label is not None else None,
        category=label.failure_category if label is not None else None,
        progress=label.progress if label is not None else None,
        tags=frozenset(label.tags) if label is not None else frozenset(),
        notes=label.notes if label is not None else "",
        annotator=frozenset(h.annotator for h in heads),
        annotators=len(voting),
        agreement=agreement(heads),
        disagreement=disagrees(heads),
        interventions=record.num_takeovers,
        handbacks=record.num_handbacks,
        has_intervention=record.num_takeovers > 0,
        human_steps=human,
        human_fraction=human / record.num_steps if record.num_steps else 0.0,
        derived=derived,
        record=record,
        resolution=res,
        heads=tuple(heads),
    )


def gather(store: Store, rule: Rule = Rule.LEAD) -> list[EpisodeFacts]:
    """The facts of every episode in the store (deleted ones left out), oldest first."""
    records = store.list_episodes()
    if not records:
        return []
    heads = store.labels.heads(None)
    events = _control_events(store)
    derived = _derived_names(store)
    return [
        facts_of(
            r,
            heads.get(r.episode_id, []),
            rule,
            human_steps(events.get(r.episode_id, ()), r.num_steps),
            derived.get(r.episode_id, frozenset()),
        )
        for r in records
    ]


# -- statistics ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Statistics:
    """What a selection of episodes adds up to."""

    episodes: int
    steps: int
    hours: float
    """Recorded time, start to end of each attempt."""
    outcomes: dict[str, int]
    """Outcome that counts -> episodes, most cautious first; 'none' for the unlabelled."""
    interventions: int
    """Takeovers in all."""
    with_intervention: int
    """Episodes with at least one takeover."""
    human_steps: int
    annotated: int
    """Episodes labelled by two or more voting annotators."""
    agreement: float | None
    """Mean agreement of those (None when there is none)."""
    disagreements: int

    @property
    def interventions_per_attempt(self) -> float:
        return self.interventions / self.episodes if self.episodes else 0.0

    @property
    def human_fraction(self) -> float:
        """Share of all steps the human drove."""
        return self.human_steps / self.steps if self.steps else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "episodes": self.episodes,
            "steps": self.steps,
            "hours": self.hours,
            "outcomes": dict(self.outcomes),
            "interventions": self.interventions,
            "interventions_per_attempt": self.interventions_per_attempt,
            "with_intervention": self.with_intervention,
            "human_steps": self.human_steps,
            "human_fraction": self.human_fraction,
            "annotated": self.annotated,
            "agreement": self.agreement,
            "disagreements": self.disagreements,
        }

    def lines(self) -> list[str]:
        """The statistics as people read them, one figure per line."""
        mix = ", ".join(f"{n} {o.replace('_', '-')}" for o, n in self.outcomes.items() if n) or "-"
        agree = (
            f"{self.agreement:.2f} mean over {self.annotated} episode(s) with several annotators"
            if self.agreement is not None
            else "- (no episode has several annotators)"
        )
        return [
            f"episodes        {self.episodes}",
            f"steps           {self.steps}",
            f"hours           {self.hours:.2f}",
            f"outcomes        {mix}",
            f"interventions   {self.interventions} ({self.interventions_per_attempt:.2f} per attempt; "
            f"{self.with_intervention} attempt(s) with one)",
            f"human steps     {self.human_steps} ({100 * self.human_fraction:.1f} % of steps)",
            f"agreement       {agree}",
            f"disagreements   {self.disagreements}",
        ]


def statistics(episodes: Sequence[EpisodeFacts]) -> Statistics:
    outcomes = Counter(e.label or "none" for e in episodes)
    several = [e.agreement for e in episodes if e.annotators > 1]
    return Statistics(
        episodes=len(episodes),
        steps=sum(e.steps for e in episodes),
        hours=sum(e.duration for e in episodes) / 3600.0,
        outcomes={o: outcomes[o] for o in (*CAUTION, "none")},
        interventions=sum(e.interventions for e in episodes),
        with_intervention=sum(1 for e in episodes if e.has_intervention),
        human_steps=sum(e.human_steps for e in episodes),
        annotated=len(several),
        agreement=sum(several) / len(several) if several else None,
        disagreements=sum(1 for e in episodes if e.disagreement),
    )


# -- selections ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Selection:
    """The episodes a query picks, oldest first, and their statistics."""

    query: str
    episodes: tuple[EpisodeFacts, ...]
    stats: Statistics

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.episodes]


def pick(facts: Sequence[EpisodeFacts], query: str | Node) -> Selection:
    """The episodes of ``facts`` that ``query`` matches (text is parsed first)."""
    node = parse_query(query) if isinstance(query, str) else query
    match = matcher(node, FIELDS)
    chosen = tuple(e for e in facts if match(e))
    return Selection(query if isinstance(query, str) else query_text(node), chosen, statistics(chosen))


def select_episodes(store: Store, query: str, rule: Rule = Rule.LEAD) -> Selection:
    """The store's episodes that ``query`` matches (parsed before the store is read)."""
    node = parse_query(query)
    chosen = pick(gather(store, rule), node)
    return Selection(query, chosen.episodes, chosen.stats)


def freeze(
    store: Store,
    tag: str,
    query: str,
    *,
    message: str = "",
    rule: Rule = Rule.LEAD,
    parent: str = "",
    videos: bool | Sequence[str] = False,
    derived: DerivationPins | None = None,
) -> tuple[str, Manifest, Selection]:
    """Freeze the episodes ``query`` matches as a version named ``tag`` (``message``: what it is
    for); the query is recorded in the manifest (``created_from``), each episode's label resolved
    under ``rule`` is pinned. ``parent`` records the lineage. Returns the digest, the manifest and
    the selection."""
    chosen = select_episodes(store, query, rule)
    if not chosen.episodes:
        raise EmptySelectionError(f"nothing to commit: the query matches no episodes ({query!r})")
    digest, manifest = store.commit(
        tag,
        episode_ids=chosen.ids,
        message=message,
        parent=parent,
        videos=videos,
        labels=version_labels(store, rule),
        query=query.strip() or "all",
        derived=derived,
    )
    return digest, manifest, chosen
