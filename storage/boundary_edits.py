"""Edits of an episode's recorded takeovers and hand-backs, as append-only revisions in the catalog
(``boundary_edits``): plain data.

The recorded control source says who drove each step and never changes. An edit says where a
recorded boundary *counts from* for what is derived from it (training labels, the pre-intervention
window): an annotator who sees that the operator grabbed the SpaceMouse three steps before the
takeover was recorded moves the takeover there; one who sees the policy going wrong a second
earlier marks the pre-intervention window from there. A boundary is named by its kind
('takeover' or 'handback') and its recorded step; each edit of it names the edit it replaces
(its parent); the newest edit of a boundary is the one that counts. No edit is ever changed or
removed (`gc` removes them only with their episode).

This module stores and reads; whether an edit makes sense for the episode (the step lies between
the neighbouring boundaries, the window before the takeover) is checked by
:mod:`takeover.annotation.boundary_edits`, which knows the episode's boundaries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from takeover.storage.errors import InvalidLabelError, UnknownEpisodeError
from takeover.storage.label_revisions import check_annotator, chunks
from takeover.storage.tables import BoundaryEditRow, EpisodeRow

KINDS = ("takeover", "handback")
ROLES = ("annotator", "lead")


@dataclass(frozen=True, kw_only=True)
class BoundaryEdit:
    """A stored edit of one recorded boundary."""

    id: int
    episode_id: str
    parent_id: int | None
    """The previous edit of the same boundary (None for its first)."""
    annotator: str
    role: str
    created_at: float
    kind: str
    """'takeover' or 'handback'."""
    recorded_step: int
    """The boundary as recorded: its identity."""
    step: int
    """Where it counts from after this edit."""
    pre_window_start: int | None
    """Takeovers: the first step of the pre-intervention window (ending at ``step``); None: the
    derivation's default window."""
    notes: str


@dataclass(frozen=True, kw_only=True)
class EditDraft:
    episode_id: str
    kind: str
    recorded_step: int
    step: int
    pre_window_start: int | None = None
    notes: str = ""
    annotator: str
    role: str = "annotator"

    def check(self) -> None:
        """Raise :class:`InvalidLabelError` (one line) unless the values are ones an edit may hold."""
        if self.kind not in KINDS:
            raise InvalidLabelError(f"a boundary is a {' or a '.join(KINDS)}, got {self.kind!r}")
        if self.role not in ROLES:
            raise InvalidLabelError(f"a boundary is edited as {' or '.join(ROLES)}, got {self.role!r}")
        check_annotator(self.annotator)
        if self.step < 0 or self.recorded_step < 0:
            raise InvalidLabelError("boundary steps are 0 or more")
        if self.pre_window_start is not None:
            if self.kind != "takeover":
                raise InvalidLabelError(
                    "a pre-intervention window is marked before a takeover, not a hand-back"
                )
            if not 0 <= self.pre_window_start <= self.step:
                raise InvalidLabelError(
                    f"a pre-intervention window starts at or before its takeover (step {self.step}), "
                    f"got {self.pre_window_start}"
                )


def _edit(row: BoundaryEditRow) -> BoundaryEdit:
    return BoundaryEdit(**{f.name: getattr(row, f.name) for f in fields(BoundaryEdit)})


def append(s: Session, drafts: Sequence[EditDraft], now: float) -> list[BoundaryEdit]:
    """Append ``drafts``, each the newest edit of its boundary (its parent is the boundary's
    previous newest edit); returns them stored."""
    for d in drafts:
        d.check()
    wanted = sorted({d.episode_id for d in drafts})
    known = set(s.scalars(select(EpisodeRow.episode_id).where(EpisodeRow.episode_id.in_(wanted))))
    missing = [i for i in wanted if i not in known]
    if missing:
        raise UnknownEpisodeError(f"no such episode(s) in the catalog: {', '.join(missing[:5])}")
    t = BoundaryEditRow
    rows = []
    for d in drafts:
        parent = s.scalar(
            select(func.max(t.id)).where(
                t.episode_id == d.episode_id, t.kind == d.kind, t.recorded_step == d.recorded_step
            )
        )
        row = t(
            episode_id=d.episode_id,
            parent_id=parent,
            annotator=d.annotator,
            role=d.role,
            created_at=now,
            kind=d.kind,
            recorded_step=d.recorded_step,
            step=d.step,
            pre_window_start=d.pre_window_start,
            notes=d.notes,
        )
        s.add(row)
        s.flush()
        rows.append(row)
    return [_edit(r) for r in rows]


def history(s: Session, episode_id: str) -> list[BoundaryEdit]:
    if s.get(EpisodeRow, episode_id) is None:
        raise UnknownEpisodeError(f"no episode {episode_id!r} in the catalog")
    t = BoundaryEditRow
    return [_edit(r) for r in s.scalars(select(t).where(t.episode_id == episode_id).order_by(t.id))]


def current(s: Session, episode_ids: Sequence[str] | None = None) -> dict[str, list[BoundaryEdit]]:
    """Episode id -> the newest edit of each edited boundary, in recorded-step order; for the given
    episodes or all. An episode without edits has no key."""
    t = BoundaryEditRow
    newest = select(func.max(t.id)).group_by(t.episode_id, t.kind, t.recorded_step)
    out: dict[str, list[BoundaryEdit]] = {}
    for chunk in chunks(None if episode_ids is None else sorted(set(episode_ids))):
        q = newest if chunk is None else newest.where(t.episode_id.in_(list(chunk)))
        for row in s.scalars(select(t).where(t.id.in_(q)).order_by(t.episode_id, t.recorded_step, t.kind)):
            out.setdefault(row.episode_id, []).append(_edit(row))
    return out


class BoundaryEdits:
    """The boundary edits of a catalog (``store.boundaries``); see the module's doc."""

    def __init__(
        self, tx: Callable[[str], AbstractContextManager[Session]], clock: Callable[[], float]
    ) -> None:
        self._tx = tx
        self._clock = clock

    def append(self, drafts: Sequence[EditDraft]) -> list[BoundaryEdit]:
        """Append the edits in one transaction (none if any is refused); returns them stored."""
        if not drafts:
            return []
        try:
            with self._tx(f"edit boundaries of {len({d.episode_id for d in drafts})} episode(s)") as s:
                return append(s, drafts, self._clock())
        except IntegrityError:
            raise InvalidLabelError(
                "an episode being edited was removed meanwhile: nothing was written; try again"
            ) from None

    def history(self, episode_id: str) -> list[BoundaryEdit]:
        """Every edit of the episode's boundaries, oldest first."""
        with self._tx("") as s:
            return history(s, episode_id)

    def current(self, episode_ids: Sequence[str] | None = None) -> dict[str, list[BoundaryEdit]]:
        """Episode id -> the edit that counts of each edited boundary (see :func:`current`)."""
        with self._tx("") as s:
            return current(s, episode_ids)
