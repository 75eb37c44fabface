"""Boundary edits as append-only revisions: ``boundary_edits``.

An annotator moves where a recorded takeover or hand-back counts from, or marks the
pre-intervention window before a takeover; the recorded control source never changes.

Revision ID: 0006_boundary_edits
Revises: 0005_label_revisions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_boundary_edits"
down_revision = "0005_label_revisions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "boundary_edits",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("episode_id", sa.String(200), sa.ForeignKey("episodes.episode_id"), nullable=False),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("boundary_edits.id"), nullable=True),
        sa.Column("annotator", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("recorded_step", sa.Integer, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("pre_window_start", sa.Integer, nullable=True),
        sa.Column("notes", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_boundary_edits_heads", "boundary_edits", ["episode_id", "kind", "recorded_step", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_boundary_edits_heads", table_name="boundary_edits")
    op.drop_table("boundary_edits")
