"""The catalog's tables: the SQL schema of episodes, events, recoveries, versions, tags, seeds and
label revisions.

The database is made and upgraded by the migrations in :mod:`takeover.storage.migrations`, never
from these classes; a test checks that the migrated schema equals them.

Rows are the catalog's business; everyone else sees the frozen records of
:mod:`takeover.storage.catalog`. The columns of ``episodes`` are those of
:class:`~takeover.storage.catalog.EpisodeRecord` (a test keeps them equal).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Double, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """The catalog's tables (episodes, events, versions, tags, seeds)."""


class EpisodeRow(Base):
    __tablename__ = "episodes"
    episode_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    station: Mapped[str] = mapped_column(String(200))
    robot: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(Text)
    operator: Mapped[str] = mapped_column(String(200))
    policy_id: Mapped[str] = mapped_column(String(200))
    rate_hz: Mapped[float] = mapped_column(Double)
    started_at: Mapped[float] = mapped_column(Double, index=True)
    ended_at: Mapped[float] = mapped_column(Double)
    num_steps: Mapped[int] = mapped_column(Integer)
    success: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    outcome: Mapped[str] = mapped_column(String(32))
    blob_digest: Mapped[str] = mapped_column(String(64))
    num_takeovers: Mapped[int] = mapped_column(Integer)
    num_handbacks: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[float] = mapped_column(Double)


class EventRow(Base):
    __tablename__ = "events"
    episode_id: Mapped[str] = mapped_column(ForeignKey("episodes.episode_id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    step: Mapped[int] = mapped_column(Integer)
    t: Mapped[float] = mapped_column(Double)
    reason: Mapped[str] = mapped_column(Text)


class RecoveryRow(Base):
    """Episodes recovered from an unfinished recording, and when their data was cut."""

    __tablename__ = "recoveries"
    episode_id: Mapped[str] = mapped_column(ForeignKey("episodes.episode_id"), primary_key=True)
    cut_at: Mapped[float] = mapped_column(Double)


class EpisodeEndRow(Base):
    """Why an episode ended and the operator's note (episodes cataloged before these were kept
    have no row)."""

    __tablename__ = "episode_ends"
    episode_id: Mapped[str] = mapped_column(ForeignKey("episodes.episode_id"), primary_key=True)
    end_reason: Mapped[str] = mapped_column(String(32), index=True)
    note: Mapped[str] = mapped_column(Text)


class VersionRow(Base):
    """A frozen version. ``manifest`` is the full canonical manifest when ``base`` is NULL, else
    the change from version ``base`` (its parent) as a manifest delta
    (:mod:`takeover.storage.manifest_store`); ``depth`` counts the deltas down to a full manifest."""

    __tablename__ = "versions"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    manifest: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Double)
    message: Mapped[str] = mapped_column(Text)
    base: Mapped[str | None] = mapped_column(String(64), nullable=True)
    depth: Mapped[int] = mapped_column(Integer, server_default="0")


class TagRow(Base):
    __tablename__ = "tags"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    version_digest: Mapped[str] = mapped_column(ForeignKey("versions.digest"))
    created_at: Mapped[float] = mapped_column(Double)


class SeedRow(Base):
    """A seed the store has handed out for collection, or that a person used explicitly."""

    __tablename__ = "seeds"
    seed: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    origin: Mapped[str] = mapped_column(String(16))
    """'store' (allocated) or 'configured' (asked for explicitly)."""
    taken_at: Mapped[float] = mapped_column(Double)


class EpisodeSeedRow(Base):
    """The seed an episode's scene was drawn from (episodes of a station without seeds have none)."""

    __tablename__ = "episode_seeds"
    episode_id: Mapped[str] = mapped_column(ForeignKey("episodes.episode_id"), primary_key=True)
    seed: Mapped[int] = mapped_column(BigInteger, index=True)


class EpisodeBlobRow(Base):
    """A frame blob an episode's file names (its camera frames kept apart), so a version can be
    checked and pinned from the catalog alone."""

    __tablename__ = "episode_blobs"
    episode_id: Mapped[str] = mapped_column(ForeignKey("episodes.episode_id"), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)


class DerivationRow(Base):
    """A result derived from an episode file (annotation's smoothing), stored as a blob.

    ``input_digest`` is the episode file it was computed from, so a row never describes other bytes
    than the ones it names."""

    __tablename__ = "derivations"
    episode_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    params_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    input_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    params_json: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Double)


class EpisodeDeletionRow(Base):
    """An episode deleted softly: left out of listings and new versions, kept (and readable) while a
    version holds it; `takeover data gc` removes its blobs once the retention period is over."""

    __tablename__ = "episode_deletions"
    episode_id: Mapped[str] = mapped_column(ForeignKey("episodes.episode_id"), primary_key=True)
    deleted_at: Mapped[float] = mapped_column(Double)
    reason: Mapped[str] = mapped_column(Text)


class EpisodeVideoRow(Base):
    """A camera stream of an episode transcoded to video (:mod:`takeover.storage.video`), stored as
    a blob beside the recorded JPEG frames, which stay."""

    __tablename__ = "episode_videos"
    episode_id: Mapped[str] = mapped_column(ForeignKey("episodes.episode_id"), primary_key=True)
    camera: Mapped[str] = mapped_column(String(200), primary_key=True)
    params: Mapped[str] = mapped_column(String(255), primary_key=True)
    """Canonical JSON of the encoding parameters (codec, keyframe interval, quality, preset)."""
    codec: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64), index=True)
    frame_index: Mapped[str] = mapped_column(Text)
    """JSON of the frame index (:class:`~takeover.storage.video.VideoIndex`)."""
    created_at: Mapped[float] = mapped_column(Double)


class LabelRevisionRow(Base):
    """A revision of an episode's labels (:mod:`takeover.storage.label_revisions`). Append-only: a
    row is never updated or deleted, except with its episode when `gc` removes a deleted one.

    ``id`` grows with every revision and is never reused (SQLite ``AUTOINCREMENT``, a sequence on
    PostgreSQL), so a version that pins a revision by id always means the same one."""

    __tablename__ = "label_revisions"
    __table_args__ = (
        Index("ix_label_revisions_heads", "episode_id", "annotator", "id"),
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    episode_id: Mapped[str] = mapped_column(ForeignKey("episodes.episode_id"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("label_revisions.id"), nullable=True)
    """The revision this one edits (None for an episode's first)."""
    annotator: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    """'operator' (the verdict at the end of the attempt), 'annotator' or 'lead'."""
    created_at: Mapped[float] = mapped_column(Double)
    """Wall-clock time, seconds since the epoch."""
    outcome: Mapped[str] = mapped_column(String(32))
    quality: Mapped[str | None] = mapped_column(String(32), nullable=True)
    failure_category: Mapped[str | None] = mapped_column(Text, nullable=True)
    progress: Mapped[int | None] = mapped_column(Integer, nullable=True)
    notes: Mapped[str] = mapped_column(Text)
    tags: Mapped[str] = mapped_column(Text)
    """JSON list of strings."""


class BoundaryEditRow(Base):
    """An edit of a recorded takeover or hand-back (:mod:`takeover.storage.boundary_edits`).
    Append-only, like :class:`LabelRevisionRow`; ``id`` is never reused."""

    __tablename__ = "boundary_edits"
    __table_args__ = (
        Index("ix_boundary_edits_heads", "episode_id", "kind", "recorded_step", "id"),
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    episode_id: Mapped[str] = mapped_column(ForeignKey("episodes.episode_id"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("boundary_edits.id"), nullable=True)
    """The edit of the same boundary this one replaces (None for a boundary's first edit)."""
    annotator: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    """'annotator' or 'lead'."""
    created_at: Mapped[float] = mapped_column(Double)
    kind: Mapped[str] = mapped_column(String(16))
    """'takeover' or 'handback'."""
    recorded_step: Mapped[int] = mapped_column(Integer)
    """The boundary as recorded (first step under the new control source): its identity."""
    step: Mapped[int] = mapped_column(Integer)
    """Where the boundary counts from after this edit."""
    pre_window_start: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Takeovers only: the first step of the pre-intervention window (which ends at ``step``);
    None: the derivation's default window."""
    notes: Mapped[str] = mapped_column(Text)
