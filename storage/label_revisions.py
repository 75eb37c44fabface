"""An episode's labels as append-only revisions in the catalog (``label_revisions``): plain data.

Every change of a label is a new revision naming the one it edits (its parent), who made it, in
which role and when; no revision is ever changed or removed (`gc` removes them only with their
episode). The operator's verdict at the end of an attempt is an episode's first revision, written
in the transaction that catalogs the episode: the operator's outcome, else the station's success
flag (success / failure). An episode with neither has no revision.

This module stores and reads; which revision counts (agreement between annotators, resolution
rules) and the vocabulary of failure categories are :mod:`takeover.annotation.labels`' business.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from takeover.storage.errors import InvalidLabelError, UnknownEpisodeError, listing
from takeover.storage.schema import AttemptSummary
from takeover.storage.tables import EpisodeRow, LabelRevisionRow

OUTCOMES = ("success", "near_success", "failure")
QUALITIES = ("clean", "side_effects", "suboptimal")
"""How a success went: cleanly, with side effects (something else disturbed), or suboptimally."""
ROLES = ("operator", "annotator", "lead")


@dataclass(frozen=True, kw_only=True)
class Label:
    """What a revision says of an episode."""

    outcome: str
    """'success', 'near_success' or 'failure'."""
    quality: str | None = None
    """For a success only: 'clean', 'side_effects' or 'suboptimal'."""
    failure_category: str | None = None
    """For a failure only: one of the configured categories."""
    progress: int | None = None
    """How far the attempt got, 0..100 %."""
    notes: str = ""
    tags: tuple[str, ...] = ()

    def label_fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(Label)}

    def check(self) -> None:
        """Raise :class:`InvalidLabelError` (one line) unless every value is one a label may hold:
        an outcome, a quality only for a success, a category only for a failure, progress in
        0..100, tags that are non-empty words. Which categories exist is configured
        (:mod:`takeover.annotation.labels` checks that)."""
        if self.outcome not in OUTCOMES:
            raise InvalidLabelError(f"an outcome is one of {', '.join(OUTCOMES)}, got {self.outcome!r}")
        if self.quality is not None:
            if self.outcome != "success":
                raise InvalidLabelError(f"a quality is for successes only, not for a {self.outcome}")
            if self.quality not in QUALITIES:
                raise InvalidLabelError(f"a quality is one of {', '.join(QUALITIES)}, got {self.quality!r}")
        if self.failure_category is not None:
            if self.outcome != "failure":
                raise InvalidLabelError(f"a failure category is for failures only, not for a {self.outcome}")
            if not _word(self.failure_category):
                raise InvalidLabelError(f"a failure category is a word, got {self.failure_category!r}")
        p = self.progress
        if p is not None and (isinstance(p, bool) or not isinstance(p, int) or not 0 <= p <= 100):
            raise InvalidLabelError(f"progress is a whole number of percent, 0 to 100, got {p!r}")
        bad = [t for t in self.tags if not _word(t)]
        if bad:
            raise InvalidLabelError(f"a tag is a word without spaces or commas, got {bad[0]!r}")


def _word(text: object) -> bool:
    """A category or a tag: 1..200 printable characters, no spaces or commas."""
    return (
        isinstance(text, str)
        and 0 < len(text) <= _NAME_MAX
        and text.isprintable()
        and not any(c.isspace() or c == "," for c in text)
    )


_NAME_MAX = 200


@dataclass(frozen=True, kw_only=True)
class LabelRevision(Label):
    """A stored revision of an episode's labels."""

    id: int
    """Grows with every revision of the catalog and is never reused."""
    episode_id: str
    parent_id: int | None
    """The revision this one edits (None for the episode's first)."""
    annotator: str
    role: str
    """'operator', 'annotator' or 'lead'."""
    created_at: float
    """Wall-clock time, seconds since the epoch."""


@dataclass(frozen=True, kw_only=True)
class Draft:
    """A revision to append: its label, its episode, who says so and what it edits."""

    episode_id: str
    label: Label
    annotator: str
    role: str
    parent_id: int | None
    """The revision it edits: one of the same episode's (None: it edits nothing)."""

    def check(self) -> None:
        self.label.check()
        if self.role not in ROLES:
            raise InvalidLabelError(f"a role is one of {', '.join(ROLES)}, got {self.role!r}")
        check_annotator(self.annotator)


def check_annotator(name: str) -> None:
    """:class:`InvalidLabelError` unless ``name`` can name an annotator (1 to 200 printable characters)."""
    if not name.strip() or len(name) > _NAME_MAX or not name.isprintable():
        raise InvalidLabelError(
            f"an annotator is named by 1 to {_NAME_MAX} printable characters, got {name!r}"
        )


@dataclass(frozen=True)
class PinnedLabel:
    """The label a version gives an episode, and the pin that says where it comes from."""

    outcome: str
    pin: str
    """``RULE:REVISIONS``, e.g. ``lead:7`` or ``majority:1,4``: the resolution rule used and the
    ids of the revisions the label rests on (the manifest entry's ``labels``)."""


LabelResolver = Callable[[Sequence[str]], Mapping[str, PinnedLabel]]
"""Episode ids -> the label a new version gives each (an episode without a key keeps its own
verdict). :mod:`takeover.annotation.labels` makes them; storage only applies them."""


def pin_text(rule: str, revisions: Sequence[int]) -> str:
    """The manifest pin of a label resolved by ``rule`` from ``revisions``: ``lead:7``."""
    if not rule.isidentifier() or not revisions:
        raise ValueError(f"a label pin names a rule and at least one revision, got {rule!r}, {revisions!r}")
    return f"{rule}:{','.join(str(int(r)) for r in revisions)}"


def operator_verdict(attempt: AttemptSummary) -> Label | None:
    """The label the operator gave the attempt: their outcome, else the station's success flag;
    None when there is neither."""
    if attempt.outcome in OUTCOMES:
        outcome = attempt.outcome
    elif attempt.success is not None:
        outcome = "success" if attempt.success else "failure"
    else:
        return None
    return Label(outcome=outcome, notes=attempt.note)


def _row(label: Label, **who: Any) -> LabelRevisionRow:
    values = label.label_fields()
    values["tags"] = json.dumps(list(label.tags), ensure_ascii=False)
    return LabelRevisionRow(**values, **who)


def add_first(s: Session, attempt: AttemptSummary) -> None:
    """Write an episode's first revision, the operator's verdict (nothing when there is none)."""
    verdict = operator_verdict(attempt)
    if verdict is not None:
        s.add(
            _row(
                verdict,
                episode_id=attempt.episode_id,
                parent_id=None,
                annotator=attempt.operator,
                role="operator",
                created_at=attempt.ended_at,
            )
        )


def _revision(row: LabelRevisionRow) -> LabelRevision:
    values = {f.name: getattr(row, f.name) for f in fields(LabelRevision)}
    return LabelRevision(**{**values, "tags": tuple(json.loads(row.tags))})


def append(s: Session, drafts: Sequence[Draft], now: float) -> list[LabelRevision]:
    """Append ``drafts`` (checked first: every episode cataloged, every parent a revision of the
    same episode); returns them stored, in order."""
    for d in drafts:
        d.check()
    wanted = sorted({d.episode_id for d in drafts})
    known = set(s.scalars(select(EpisodeRow.episode_id).where(EpisodeRow.episode_id.in_(wanted))))
    missing = [i for i in wanted if i not in known]
    if missing:
        raise UnknownEpisodeError(f"no such episode(s) in the catalog: {listing(missing)}")
    parents = sorted({d.parent_id for d in drafts if d.parent_id is not None})
    q = select(LabelRevisionRow.id, LabelRevisionRow.episode_id).where(LabelRevisionRow.id.in_(parents))
    owner: dict[int, str] = {rid: eid for rid, eid in s.execute(q)}
    for d in drafts:
        if d.parent_id is not None and owner.get(d.parent_id) != d.episode_id:
            whose = f"one of episode {owner[d.parent_id]}" if d.parent_id in owner else "no revision"
            raise InvalidLabelError(
                f"revision {d.parent_id} cannot be the parent of a revision of episode {d.episode_id}: "
                f"it is {whose}"
            )
    rows = [
        _row(
            d.label,
            episode_id=d.episode_id,
            parent_id=d.parent_id,
            annotator=d.annotator,
            role=d.role,
            created_at=now,
        )
        for d in drafts
    ]
    s.add_all(rows)
    s.flush()
    return [_revision(r) for r in rows]


def history(s: Session, episode_id: str) -> list[LabelRevision]:
    if s.get(EpisodeRow, episode_id) is None:
        raise UnknownEpisodeError(f"no episode {episode_id!r} in the catalog")
    q = (
        select(LabelRevisionRow)
        .where(LabelRevisionRow.episode_id == episode_id)
        .order_by(LabelRevisionRow.id)
    )
    return [_revision(r) for r in s.scalars(q)]


_CHUNK = 10_000
"""Episode ids per query of :func:`heads` (SQLite takes up to 32,766 values in one statement)."""


def chunks(ids: Sequence[str] | None) -> Iterator[Sequence[str] | None]:
    if ids is None:
        yield None
        return
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def heads(s: Session, episode_ids: Sequence[str] | None = None) -> dict[str, list[LabelRevision]]:
    """Episode id -> the newest revision of each annotator, oldest first; for the given episodes
    (one query for up to 10,000) or all. An episode without revisions has no key."""
    out: dict[str, list[LabelRevision]] = {}
    t = LabelRevisionRow
    for chunk in chunks(None if episode_ids is None else sorted(set(episode_ids))):
        newest = select(func.max(t.id)).group_by(t.episode_id, t.annotator)
        if chunk is not None:
            newest = newest.where(t.episode_id.in_(list(chunk)))
        for row in s.scalars(select(t).where(t.id.in_(newest)).order_by(t.episode_id, t.id)):
            out.setdefault(row.episode_id, []).append(_revision(row))
    return out


class LabelRevisions:
    """The label revisions of a catalog (``store.labels``); see the module's doc.

    ``tx(writing)`` opens one of the catalog's transactions (``writing`` says what a write is for;
    a read-only catalog refuses it), ``clock`` gives the wall-clock time of a new revision."""

    def __init__(
        self, tx: Callable[[str], AbstractContextManager[Session]], clock: Callable[[], float]
    ) -> None:
        self._tx = tx
        self._clock = clock

    def append(self, drafts: Sequence[Draft]) -> list[LabelRevision]:
        """Append the revisions in one transaction (none if any is refused); returns them stored."""
        if not drafts:
            return []
        try:
            with self._tx(f"label {len(drafts)} episode(s)") as s:
                return append(s, drafts, self._clock())
        except IntegrityError:  # an episode or a parent removed (`gc`) between the checks and the insert
            raise InvalidLabelError(
                "an episode or revision being labelled was removed meanwhile: nothing was written; try again"
            ) from None

    def add(
        self, episode_id: str, label: Label, *, annotator: str, role: str, parent_id: int | None
    ) -> LabelRevision:
        """Append one revision (see :meth:`append`)."""
        draft = Draft(episode_id=episode_id, label=label, annotator=annotator, role=role, parent_id=parent_id)
        return self.append([draft])[0]

    def history(self, episode_id: str) -> list[LabelRevision]:
        """Every revision of the episode, oldest first (:class:`UnknownEpisodeError` if it is not
        cataloged)."""
        with self._tx("") as s:
            return history(s, episode_id)

    def heads(self, episode_ids: Sequence[str] | None = None) -> dict[str, list[LabelRevision]]:
        """Episode id -> each annotator's newest revision of it, oldest first (see :func:`heads`)."""
        with self._tx("") as s:
            return heads(s, episode_ids)
