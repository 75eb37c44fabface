"""The frame blobs of each episode in the catalog, so a commit never opens an episode file.

An existing catalog is filled in from its episode files, once, here: the store hands in
``config.attributes["frame_blobs"]``, a function from an episode file's digest to the digests of
its frame blobs.

Revision ID: 0002_episode_blobs
Revises: 0001_baseline
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import context, op

revision = "0002_episode_blobs"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    blobs = op.create_table(
        "episode_blobs",
        sa.Column("episode_id", sa.String(200), sa.ForeignKey("episodes.episode_id"), primary_key=True),
        sa.Column("digest", sa.String(64), primary_key=True),
    )
    bind = op.get_bind()
    episodes = list(bind.execute(sa.text("SELECT episode_id, blob_digest FROM episodes ORDER BY episode_id")))
    if not episodes:
        return
    frame_blobs: Callable[[str], Sequence[str]] | None = context.config.attributes.get("frame_blobs")
    if frame_blobs is None:
        raise RuntimeError(
            "this catalog's episodes need their frame blobs listed from the episode files: "
            "open it through its store (takeover data ls --store PATH) to upgrade it"
        )
    rows = [{"episode_id": eid, "digest": d} for eid, ep_digest in episodes for d in frame_blobs(ep_digest)]
    if rows:
        op.bulk_insert(blobs, rows)


def downgrade() -> None:
    op.drop_table("episode_blobs")
