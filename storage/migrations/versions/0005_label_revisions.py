"""Labels as append-only revisions: ``label_revisions``, and revision 1 of every episode.

Every episode with a verdict gets its first revision from it: the operator's ``outcome``, else
the station's ``success`` flag (success / failure), with role 'operator', the episode's operator
as annotator, its end as the time and the operator's note as notes. An episode with neither (a
station without a flag and no verdict) has no revision.

Revision ID: 0005_label_revisions
Revises: 0004_episode_videos
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_label_revisions"
down_revision = "0004_episode_videos"
branch_labels = None
depends_on = None

_BACKFILL = """
INSERT INTO label_revisions
    (episode_id, parent_id, annotator, role, created_at, outcome, quality, failure_category,
     progress, notes, tags)
SELECT e.episode_id, NULL, e.operator, 'operator', e.ended_at,
       CASE WHEN e.outcome IN ('success', 'near_success', 'failure') THEN e.outcome
            WHEN e.success THEN 'success'
            ELSE 'failure' END,
       NULL, NULL, NULL, COALESCE(n.note, ''), '[]'
FROM episodes e LEFT OUTER JOIN episode_ends n ON n.episode_id = e.episode_id
WHERE e.outcome IN ('success', 'near_success', 'failure') OR e.success IS NOT NULL
ORDER BY e.started_at, e.episode_id
"""


def upgrade() -> None:
    op.create_table(
        "label_revisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("episode_id", sa.String(200), sa.ForeignKey("episodes.episode_id"), nullable=False),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("label_revisions.id"), nullable=True),
        sa.Column("annotator", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("quality", sa.String(32), nullable=True),
        sa.Column("failure_category", sa.Text, nullable=True),
        sa.Column("progress", sa.Integer, nullable=True),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_label_revisions_heads", "label_revisions", ["episode_id", "annotator", "id"])
    op.execute(sa.text(_BACKFILL))


def downgrade() -> None:
    op.drop_index("ix_label_revisions_heads", table_name="label_revisions")
    op.drop_table("label_revisions")
