"""Soft deletion of episodes: the catalog's `episode_deletions` rows.

A deleted episode is left out of listings and of new versions, but nothing of it is removed: it
stays readable (pull, show) while any version holds it. `takeover data gc`
(:mod:`takeover.storage.gc`) removes its blobs and rows once it has been deleted for longer than
the retention period and no version holds it. Undeleting takes the deletion back.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import column, delete, select, table
from sqlalchemy.orm import Session

from takeover.storage import references
from takeover.storage.errors import UnknownEpisodeError
from takeover.storage.tables import EpisodeDeletionRow, EpisodeRow


@dataclass(frozen=True)
class Deletion:
    episode_id: str
    deleted_at: float
    reason: str


def _check_known(s: Session, episode_ids: Sequence[str]) -> list[str]:
    wanted = sorted(set(episode_ids))
    known = set(s.scalars(select(EpisodeRow.episode_id).where(EpisodeRow.episode_id.in_(wanted))))
    missing = [i for i in wanted if i not in known]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise UnknownEpisodeError(
            f"no such episode(s) in the catalog: {shown} (`takeover data list` lists them)"
        )
    return wanted


def mark(s: Session, episode_ids: Sequence[str], reason: str, now: float) -> dict[str, Deletion]:
    wanted = _check_known(s, episode_ids)
    out = listed(s, wanted)
    for episode_id in wanted:
        if episode_id not in out:
            s.add(EpisodeDeletionRow(episode_id=episode_id, deleted_at=now, reason=reason))
            out[episode_id] = Deletion(episode_id, now, reason)
    s.flush()
    return out


def unmark(s: Session, episode_ids: Sequence[str]) -> list[str]:
    wanted = _check_known(s, episode_ids)
    were = sorted(listed(s, wanted))
    s.execute(delete(EpisodeDeletionRow).where(EpisodeDeletionRow.episode_id.in_(were)))
    return were


def listed(s: Session, episode_ids: Sequence[str] | None = None) -> dict[str, Deletion]:
    q = select(EpisodeDeletionRow)
    if episode_ids is not None:
        q = q.where(EpisodeDeletionRow.episode_id.in_(list(episode_ids)))
    return {r.episode_id: Deletion(r.episode_id, r.deleted_at, r.reason) for r in s.scalars(q)}


def forget(s: Session, episode_ids: Collection[str], deleted_before: float) -> list[str]:
    """Remove every catalog row of the episodes that are still deleted since before
    ``deleted_before`` and that no version holds (checked again here, in the transaction that
    removes them: an undelete or a new version a moment ago keeps an episode). Returns their ids."""
    still = {i for i, d in listed(s, sorted(episode_ids)).items() if d.deleted_at <= deleted_before}
    held = references.collect(s).held if still else frozenset()
    gone = sorted(still - held)
    if gone:
        conn = s.connection()
        for name in references.episode_tables(conn):
            t = table(name, column("episode_id"))
            conn.execute(t.delete().where(t.c.episode_id.in_(gone)))
    return gone
