"""Episode records and label revisions built in memory, for the curation tests that need no store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from takeover.annotation.curation import EpisodeFacts, facts_of
from takeover.annotation.labels import Rule
from takeover.storage.catalog import EpisodeRecord
from takeover.storage.label_revisions import LabelRevision

T0 = 1.7e9
"""2023-11-14, 22:13 UTC."""


def record(episode_id: str = "e1", **fields: Any) -> EpisodeRecord:
    values: dict[str, Any] = {
        "episode_id": episode_id,
        "station": "sim-0",
        "robot": "sawyer",
        "task": "pick the red cube",
        "operator": "ada",
        "policy_id": "pi0-test",
        "rate_hz": 10.0,
        "started_at": T0,
        "ended_at": T0 + 12.0,
        "success": True,
        "outcome": "success",
        "num_steps": 120,
        "blob_digest": "d" * 64,
        "num_takeovers": 0,
        "num_handbacks": 0,
        "recorded_at": T0 + 13.0,
    }
    values.update(fields)
    return EpisodeRecord(**values)


def revision(
    rid: int,
    outcome: str,
    annotator: str = "ada",
    role: str = "operator",
    episode_id: str = "e1",
    **label: Any,
) -> LabelRevision:
    return LabelRevision(
        id=rid,
        episode_id=episode_id,
        parent_id=None,
        annotator=annotator,
        role=role,
        created_at=T0 + rid,
        outcome=outcome,
        **label,
    )


def facts(
    episode_id: str = "e1",
    heads: Sequence[LabelRevision] | None = None,
    *,
    human: int = 0,
    derived: frozenset[str] = frozenset(),
    rule: Rule = Rule.LEAD,
    **fields: Any,
) -> EpisodeFacts:
    rec = record(episode_id, **fields)
    if heads is None:
        heads = [revision(1, rec.outcome, rec.operator, episode_id=episode_id)] if rec.outcome else []
    return facts_of(rec, heads, rule, human, derived)
