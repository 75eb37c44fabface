"""Baseline: the catalog as it stood before migrations, every table (derivations included).

A catalog made before migrations has some or all of these tables and no version row; each table is
created only where it is missing, so such a catalog upgrades in place without being touched.

Revision ID: 0001_baseline
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def _tables(md: sa.MetaData) -> list[sa.Table]:
    return [
        sa.Table(
            "episodes",
            md,
            sa.Column("episode_id", sa.String(200), primary_key=True),
            sa.Column("station", sa.String(200), nullable=False),
            sa.Column("robot", sa.String(200), nullable=False),
            sa.Column("task", sa.Text, nullable=False),
            sa.Column("operator", sa.String(200), nullable=False),
            sa.Column("policy_id", sa.String(200), nullable=False),
            sa.Column("rate_hz", sa.Double, nullable=False),
            sa.Column("started_at", sa.Double, nullable=False, index=True),
            sa.Column("ended_at", sa.Double, nullable=False),
            sa.Column("num_steps", sa.Integer, nullable=False),
            sa.Column("success", sa.Boolean, nullable=True),
            sa.Column("outcome", sa.String(32), nullable=False),
            sa.Column("blob_digest", sa.String(64), nullable=False),
            sa.Column("num_takeovers", sa.Integer, nullable=False),
            sa.Column("num_handbacks", sa.Integer, nullable=False),
            sa.Column("recorded_at", sa.Double, nullable=False),
        ),
        sa.Table(
            "events",
            md,
            sa.Column("episode_id", sa.String(200), sa.ForeignKey("episodes.episode_id"), primary_key=True),
            sa.Column("seq", sa.Integer, primary_key=True),
            sa.Column("kind", sa.String(32), nullable=False),
            sa.Column("step", sa.Integer, nullable=False),
            sa.Column("t", sa.Double, nullable=False),
            sa.Column("reason", sa.Text, nullable=False),
        ),
        sa.Table(
            "recoveries",
            md,
            sa.Column("episode_id", sa.String(200), sa.ForeignKey("episodes.episode_id"), primary_key=True),
            sa.Column("cut_at", sa.Double, nullable=False),
        ),
        sa.Table(
            "episode_ends",
            md,
            sa.Column("episode_id", sa.String(200), sa.ForeignKey("episodes.episode_id"), primary_key=True),
            sa.Column("end_reason", sa.String(32), nullable=False, index=True),
            sa.Column("note", sa.Text, nullable=False),
        ),
        sa.Table(
            "versions",
            md,
            sa.Column("digest", sa.String(64), primary_key=True),
            sa.Column("manifest", sa.Text, nullable=False),
            sa.Column("created_at", sa.Double, nullable=False),
            sa.Column("message", sa.Text, nullable=False),
        ),
        sa.Table(
            "tags",
            md,
            sa.Column("name", sa.String(128), primary_key=True),
            sa.Column("version_digest", sa.String(64), sa.ForeignKey("versions.digest"), nullable=False),
            sa.Column("created_at", sa.Double, nullable=False),
        ),
        sa.Table(
            "seeds",
            md,
            sa.Column("seed", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("origin", sa.String(16), nullable=False),
            sa.Column("taken_at", sa.Double, nullable=False),
        ),
        sa.Table(
            "episode_seeds",
            md,
            sa.Column("episode_id", sa.String(200), sa.ForeignKey("episodes.episode_id"), primary_key=True),
            sa.Column("seed", sa.BigInteger, nullable=False, index=True),
        ),
        sa.Table(
            "derivations",
            md,
            sa.Column("episode_id", sa.String(200), primary_key=True),
            sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("params_digest", sa.String(64), primary_key=True),
            sa.Column("input_digest", sa.String(64), primary_key=True),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("params_json", sa.Text, nullable=False),
            sa.Column("digest", sa.String(64), nullable=False),
            sa.Column("created_at", sa.Double, nullable=False),
        ),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    md = sa.MetaData()
    tables = _tables(md)
    md.create_all(bind, tables=tables, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    md = sa.MetaData()
    md.drop_all(bind, tables=_tables(md))
