"""Versions stored as deltas from their parent, and soft deletion of episodes.

``versions`` gains ``base`` (the version whose manifest this row's delta applies to; NULL for a
full manifest) and ``depth`` (deltas down to a full manifest). Every existing row holds a full
manifest, which is what ``base`` NULL and ``depth`` 0 say, so an existing catalog upgrades in place
without rewriting a row. ``episode_deletions`` lists the episodes deleted softly.

Revision ID: 0003_versions
Revises: 0002_episode_blobs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_versions"
down_revision = "0002_episode_blobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("versions", sa.Column("base", sa.String(64), nullable=True))
    op.add_column("versions", sa.Column("depth", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "episode_deletions",
        sa.Column("episode_id", sa.String(200), sa.ForeignKey("episodes.episode_id"), primary_key=True),
        sa.Column("deleted_at", sa.Double, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("episode_deletions")
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("depth")
        batch.drop_column("base")
