"""Camera streams transcoded to video: one row per (episode, camera, encoding parameters).

Revision ID: 0004_episode_videos
Revises: 0003_versions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_episode_videos"
down_revision = "0003_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "episode_videos",
        sa.Column("episode_id", sa.String(200), sa.ForeignKey("episodes.episode_id"), primary_key=True),
        sa.Column("camera", sa.String(200), primary_key=True),
        sa.Column("params", sa.String(255), primary_key=True),
        sa.Column("codec", sa.String(16), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("frame_index", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    op.create_index("ix_episode_videos_digest", "episode_videos", ["digest"])


def downgrade() -> None:
    op.drop_index("ix_episode_videos_digest", table_name="episode_videos")
    op.drop_table("episode_videos")
