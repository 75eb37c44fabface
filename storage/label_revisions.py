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
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy.orm import Session

from takeover.storage.schema import AttemptSummary
from takeover.storage.tables import LabelRevisionRow

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
