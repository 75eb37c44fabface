"""The catalog: episode metadata, events, versions and tags in SQL (SQLite or PostgreSQL).

Typed SQLAlchemy 2.0 ORM. Rows are handed out as frozen records, never as live ORM objects.
Episodes and versions are write-once; tags are never moved or reused. Collection seeds are
handed out here, each once (:mod:`takeover.storage.seeds`). Database errors come out as
:class:`~takeover.storage.errors.StorageError` with a message a person can act on
(:mod:`takeover.storage.catalog_db`); a catalog opened read-only refuses writes up front.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from takeover.storage import (
    deletions,
    label_revisions,
    manifest_store,
    migrations,
    references,
    seeds,
    video_rows,
)
from takeover.storage.boundary_edits import BoundaryEdits
from takeover.storage.catalog_db import describe, open_engine, translate
from takeover.storage.deletions import Deletion
from takeover.storage.errors import (
    CatalogUnavailableError,
    CorruptCatalogError,
    EpisodeExistsError,
    ReadOnlyStoreError,
    StorageError,
    TagExistsError,
    UnknownEpisodeError,
    UnknownTagError,
    UnknownVersionError,
)
from takeover.storage.gcpause import pausing_cycle_collector
from takeover.storage.label_revisions import LabelRevisions
from takeover.storage.manifest import Manifest
from takeover.storage.manifest_store import ManifestDoc
from takeover.storage.references import References
from takeover.storage.schema import AttemptSummary, EpisodeMeta, Event, EventKind
from takeover.storage.seeds import SeedRange
from takeover.storage.tables import (
    Base,
    EpisodeBlobRow,
    EpisodeDeletionRow,
    EpisodeEndRow,
    EpisodeRow,
    EpisodeSeedRow,
    EventRow,
    RecoveryRow,
    TagRow,
    VersionRow,
)
from takeover.storage.tags import check_tag_name, tag_exists_message, unknown_tag_message
from takeover.storage.video_rows import VideoRecord

_SCHEMA_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True, kw_only=True)
class EpisodeRecord(AttemptSummary):
    """A cataloged episode: its :class:`~takeover.storage.schema.AttemptSummary` (the same fields as
    the episode file's metadata, ``extra`` aside) and what the catalog adds."""

    num_steps: int
    blob_digest: str
    num_takeovers: int
    num_handbacks: int
    recorded_at: float
    cut_at: float | None = None
    """For an attempt recovered after a crash: wall-clock time of its last durable record."""

    @property
    def recovered(self) -> bool:
        return self.cut_at is not None


@dataclass(frozen=True)
class VersionRecord:
    digest: str
    manifest: Manifest
    created_at: float
    message: str


@dataclass(frozen=True)
class TagRecord:
    name: str
    digest: str
    created_at: float


_SEPARATE = ("cut_at", "seed", "end_reason", "note")
"""Record fields kept in tables of their own (recoveries, episode_seeds, episode_ends), not in
``episodes``."""


def _episode_record(
    row: EpisodeRow, cut_at: float | None = None, seed: int | None = None, end: EpisodeEndRow | None = None
) -> EpisodeRecord:
    columns = {name: getattr(row, name) for name in EpisodeRecord.field_names() if name not in _SEPARATE}
    return EpisodeRecord(
        **columns,
        cut_at=cut_at,
        seed=seed,
        end_reason=end.end_reason if end is not None else "",
        note=end.note if end is not None else "",
    )


def _episode_row(meta: EpisodeMeta, **catalog: Any) -> EpisodeRow:
    summary = {k: v for k, v in meta.summary_fields().items() if k not in _SEPARATE}
    return EpisodeRow(**summary, **catalog)


class Catalog:
    """SQL catalog at ``url``. No I/O until :meth:`connect`; use as a context manager.

    ``schema`` (PostgreSQL) puts every table in that schema by setting ``search_path`` on each
    new connection; the schema must exist. ``read_only`` opens it for reading only (a store on
    read-only media or without write permission): writes raise :class:`ReadOnlyStoreError`.
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        clock: Callable[[], float] = time.time,
        read_only: bool = False,
        read_only_reason: str = "",
        frame_blobs: Callable[[str], Sequence[str]] | None = None,
    ) -> None:
        if schema is not None and not _SCHEMA_RE.match(schema):
            raise ValueError(f"invalid schema name {schema!r}")
        self.url = url
        self.schema = schema
        self.read_only = read_only
        self.read_only_reason = read_only_reason or "it was opened read-only"
        self._clock = clock
        self._frame_blobs = frame_blobs
        """Episode file digest -> its frame blobs, for upgrading a catalog made before they were kept."""
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def connect(self) -> Catalog:
        if self._engine is not None:
            return self
        engine = open_engine(self.url, read_only=self.read_only, schema=self.schema)
        try:
            if self.read_only:
                self._check_tables(engine)
            else:
                migrations.upgrade(engine, describe(self.url), self._frame_blobs)
        except DBAPIError as exc:
            engine.dispose()
            raise translate(exc, self.url) from None
        except Exception:
            engine.dispose()
            raise
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        return self

    def _check_tables(self, engine: Engine) -> None:
        with engine.connect() as conn:
            revision = migrations.current(conn)
        migrations.check_not_newer(revision, describe(self.url))
        missing = sorted(set(Base.metadata.tables) - set(inspect(engine).get_table_names()))
        if missing or revision != migrations.head():
            old = f"it lacks the tables {', '.join(missing)}" if missing else f"revision {revision}"
            raise CatalogUnavailableError(
                f"the catalog {describe(self.url)} has an older schema ({old}, not {migrations.head()}), "
                f"and it can only be read ({self.read_only_reason}): "
                "open the store once with write access to upgrade it"
            )

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        self._engine, self._sessions = None, None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise StorageError("catalog is not connected; call connect() or use it in a with-block")
        return self._engine

    def __enter__(self) -> Catalog:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self, writing: str = "") -> Iterator[Session]:
        """A transaction; ``writing`` says what a write is for (refused up front when read-only).

        Database errors come out as :class:`StorageError`, except IntegrityError, which the
        callers turn into what it means (a duplicate, a lost race).
        """
        if self._sessions is None:
            raise StorageError("catalog is not connected; call connect() or use it in a with-block")
        if writing and self.read_only:
            raise ReadOnlyStoreError(
                f"cannot {writing}: the catalog {describe(self.url)} can only be read "
                f"({self.read_only_reason}); it can still be listed and pulled"
            )
        try:
            with self._sessions() as s, s.begin():
                yield s
        except IntegrityError:
            raise
        except DBAPIError as exc:
            raise translate(exc, self.url) from None

    # -- episodes ----------------------------------------------------------------------------
    def add_episode(
        self,
        meta: EpisodeMeta,
        digest: str,
        num_steps: int,
        events: Sequence[Event],
        frame_blobs: Sequence[str] = (),
    ) -> None:
        """Catalog an episode stored as blob ``digest`` whose file names the separate ``frame_blobs``,
        with the operator's verdict as its first label revision. Re-adding the same blob is a no-op."""
        kinds = [EventKind(e.kind) for e in events]
        row = _episode_row(
            meta,
            num_steps=int(num_steps),
            blob_digest=digest,
            num_takeovers=kinds.count(EventKind.TAKEOVER),
            num_handbacks=kinds.count(EventKind.HANDBACK),
            recorded_at=self._clock(),
        )
        try:
            with self._tx(f"catalog episode {meta.episode_id}") as s:
                existing = s.get(EpisodeRow, meta.episode_id)
                if existing is not None:
                    self._check_same_blob(meta.episode_id, existing.blob_digest, digest)
                    return
                s.add(row)
                s.flush()
                if meta.extra.get("recovered"):
                    s.add(RecoveryRow(episode_id=meta.episode_id, cut_at=float(meta.extra["cut_at"])))
                seed = meta.seed
                if seed is not None:
                    s.add(EpisodeSeedRow(episode_id=meta.episode_id, seed=seed))
                if meta.end_reason or meta.note:
                    s.add(
                        EpisodeEndRow(episode_id=meta.episode_id, end_reason=meta.end_reason, note=meta.note)
                    )
                for blob in sorted(set(frame_blobs)):
                    s.add(EpisodeBlobRow(episode_id=meta.episode_id, digest=blob))
                for seq, e in enumerate(events):
                    s.add(
                        EventRow(
                            episode_id=meta.episode_id,
                            seq=seq,
                            kind=str(EventKind(e.kind).value),
                            step=int(e.step),
                            t=float(e.t),
                            reason=e.reason,
                        )
                    )
                label_revisions.add_first(s, meta)
        except IntegrityError:
            # Another writer cataloged the same id between our check and our insert.
            existing_digest = self.get_episode(meta.episode_id).blob_digest
            self._check_same_blob(meta.episode_id, existing_digest, digest)

    @staticmethod
    def _check_same_blob(episode_id: str, existing: str, new: str) -> None:
        if existing != new:
            raise EpisodeExistsError(
                f"episode {episode_id} is already cataloged with different content "
                f"({existing[:12]}…, not {new[:12]}…); recorded episodes are immutable"
            )

    def get_episode(self, episode_id: str) -> EpisodeRecord:
        with self._tx() as s:
            row = s.get(EpisodeRow, episode_id)
            if row is None:
                raise UnknownEpisodeError(f"no episode {episode_id!r} in the catalog")
            rec = s.get(RecoveryRow, episode_id)
            seed = s.get(EpisodeSeedRow, episode_id)
            return _episode_record(
                row,
                rec.cut_at if rec is not None else None,
                seed.seed if seed is not None else None,
                s.get(EpisodeEndRow, episode_id),
            )

    def get_events(self, episode_id: str) -> list[Event]:
        with self._tx() as s:
            if s.get(EpisodeRow, episode_id) is None:
                raise UnknownEpisodeError(f"no episode {episode_id!r} in the catalog")
            rows = s.scalars(select(EventRow).where(EventRow.episode_id == episode_id).order_by(EventRow.seq))
            return [Event(EventKind(r.kind), r.step, r.t, r.reason) for r in rows]

    def list_episodes(
        self,
        *,
        episode_ids: Sequence[str] | None = None,
        task: str | None = None,
        station: str | None = None,
        operator: str | None = None,
        success: bool | None = None,
        outcome: str | None = None,
        seed: int | None = None,
        limit: int | None = None,
        end_reasons_out: Sequence[str] = (),
        deleted: bool | None = False,
    ) -> list[EpisodeRecord]:
        """Episodes matching every given filter, oldest first; ``end_reasons_out``: leave out the
        episodes that ended for one of these reasons. ``deleted``: False (default) leaves out the
        episodes deleted softly, True lists only them, None lists every cataloged episode."""
        q = (
            select(EpisodeRow, RecoveryRow.cut_at, EpisodeSeedRow.seed, EpisodeEndRow)
            .outerjoin(RecoveryRow, RecoveryRow.episode_id == EpisodeRow.episode_id)
            .outerjoin(EpisodeSeedRow, EpisodeSeedRow.episode_id == EpisodeRow.episode_id)
            .outerjoin(EpisodeEndRow, EpisodeEndRow.episode_id == EpisodeRow.episode_id)
        )
        if end_reasons_out:
            q = q.where(
                (EpisodeEndRow.end_reason.is_(None))
                | (EpisodeEndRow.end_reason.not_in(list(end_reasons_out)))
            )
        if deleted is not None:
            gone = select(EpisodeDeletionRow.episode_id)
            q = q.where(EpisodeRow.episode_id.in_(gone) if deleted else EpisodeRow.episode_id.not_in(gone))
        if seed is not None:
            q = q.where(EpisodeSeedRow.seed == seed)
        if episode_ids is not None:
            q = q.where(EpisodeRow.episode_id.in_(list(episode_ids)))
        filters: dict[str, Any] = {
            "task": task,
            "station": station,
            "operator": operator,
            "success": success,
            "outcome": outcome,
        }
        for name, value in filters.items():
            if value is not None:
                q = q.where(getattr(EpisodeRow, name) == value)
        q = q.order_by(EpisodeRow.started_at, EpisodeRow.episode_id)
        if limit is not None:
            q = q.limit(limit)
        with self._tx() as s:
            return [_episode_record(r, cut, sd, end) for r, cut, sd, end in s.execute(q)]

    def frame_blobs(self, episode_ids: Sequence[str] | None = None) -> dict[str, list[str]]:
        """Episode id -> the digests of its frame blobs (sorted), for the given episodes or all;
        an episode without frame blobs has no key."""
        q = select(EpisodeBlobRow.episode_id, EpisodeBlobRow.digest).order_by(
            EpisodeBlobRow.episode_id, EpisodeBlobRow.digest
        )
        if episode_ids is not None:
            q = q.where(EpisodeBlobRow.episode_id.in_(list(episode_ids)))
        out: dict[str, list[str]] = {}
        with self._tx() as s:
            for eid, digest in s.execute(q):
                out.setdefault(eid, []).append(digest)
        return out

    def count_episodes(self) -> int:
        with self._tx() as s:
            return int(s.scalar(select(func.count()).select_from(EpisodeRow)) or 0)

    @property
    def labels(self) -> LabelRevisions:
        """The episodes' label revisions (:mod:`takeover.storage.label_revisions`)."""
        return LabelRevisions(self._tx, self._clock)

    @property
    def boundaries(self) -> BoundaryEdits:
        """The edits of the episodes' boundaries (:mod:`takeover.storage.boundary_edits`)."""
        return BoundaryEdits(self._tx, self._clock)

    # -- soft deletion (takeover.storage.deletions) ------------------------------------------
    def delete_episodes(self, episode_ids: Sequence[str], reason: str = "") -> dict[str, Deletion]:
        """Delete episodes softly; returns each one's deletion (an earlier one stays as it was)."""
        with self._tx(f"delete {len(episode_ids)} episode(s)") as s:
            return deletions.mark(s, episode_ids, reason, self._clock())

    def undelete_episodes(self, episode_ids: Sequence[str]) -> list[str]:
        """Take back deletions; returns the ids that were deleted."""
        with self._tx(f"undelete {len(episode_ids)} episode(s)") as s:
            return deletions.unmark(s, episode_ids)

    def deletions(self) -> dict[str, Deletion]:
        with self._tx() as s:
            return deletions.listed(s)

    def forget_episodes(self, episode_ids: Collection[str], deleted_before: float) -> list[str]:
        """Remove every row of deleted episodes no version holds (`gc`; see
        :func:`takeover.storage.deletions.forget`); returns the ids removed."""
        with self._tx(f"forget {len(episode_ids)} deleted episode(s)") as s:
            return deletions.forget(s, episode_ids, deleted_before)

    def blob_owners(self, episode_ids: Collection[str]) -> dict[str, str]:
        """Blob digest -> the episode (of ``episode_ids``) whose rows name it."""
        with self._tx() as s:
            return references.owners(s, episode_ids)

    def references(self, exclude: Collection[str] = ()) -> References:
        """Every blob digest the catalog names, and the episodes versions hold
        (:mod:`takeover.storage.references`); ``exclude``: leave these episodes' rows out."""
        with self._tx() as s:
            return references.collect(s, exclude)

    # -- transcoded camera streams ------------------------------------------------------------
    def add_video(self, rec: VideoRecord, frame_index: str) -> bool:
        """Record a camera stream transcoded to video (its blob stored first); False if the stream
        was already recorded with these parameters (nothing is written then)."""
        try:
            with self._tx(f"record a video of episode {rec.episode_id}") as s:
                return video_rows.add(s, rec, frame_index)
        except IntegrityError:  # another transcoder recorded the same stream at the same moment
            return False

    def videos_of(self, episode_ids: Sequence[str] | None = None) -> dict[str, list[VideoRecord]]:
        """Episode id -> its transcoded streams (the given episodes, or all); none: no key."""
        with self._tx() as s:
            return video_rows.of(s, episode_ids)

    def video_index(self, episode_id: str, camera: str, digest: str) -> str:
        """The frame index (JSON) of a transcoded stream."""
        with self._tx() as s:
            return video_rows.index_of(s, episode_id, camera, digest)

    # -- versions and tags -------------------------------------------------------------------
    def create_version(self, manifest: Manifest, message: str = "") -> str:
        """Freeze ``manifest`` and return its digest. The same manifest always gives the same digest;
        creating it again changes nothing (the first message stays). A manifest with a parent is
        stored as its change from the parent (:mod:`takeover.storage.manifest_store`)."""
        doc = ManifestDoc.of(manifest)
        for attempt in range(2):
            try:
                with self._tx("freeze a version") as s:
                    return self._insert_version(s, doc, message)
            except IntegrityError:
                if attempt:  # a concurrent writer inserted the same version; it exists now
                    raise
        raise AssertionError("unreachable")

    def _insert_version(
        self, s: Session, doc: ManifestDoc, message: str, parent: ManifestDoc | None = None
    ) -> str:
        return manifest_store.freeze(s, doc, created_at=self._clock(), message=message, parent=parent)

    @pausing_cycle_collector
    def get_version(self, digest: str) -> VersionRecord:
        """The version, its manifest materialised and checked against its digest
        (:class:`CorruptCatalogError` if it no longer hashes to it)."""
        with self._tx() as s:
            created_at, message, doc = manifest_store.load(s, digest)
        try:
            manifest = doc.manifest()
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptCatalogError(f"version {digest[:12]}: its manifest does not read ({exc})") from None
        return VersionRecord(digest, manifest, created_at, message)

    def version_doc(self, digest: str) -> ManifestDoc:
        """The version's manifest as JSON objects, materialised and checked (cheaper than
        :meth:`get_version` when only a few entries are looked at)."""
        with self._tx() as s:
            return manifest_store.load(s, digest)[2]

    def version_storage(self, digest: str) -> manifest_store.Stored:
        """How the version is stored: its bytes in the catalog, whole or as a delta."""
        with self._tx() as s:
            return manifest_store.stored(s, digest)

    @pausing_cycle_collector
    def materialised_versions(self) -> list[tuple[str, Manifest | None, StorageError | None]]:
        """Every frozen version, oldest first: (digest, its manifest materialised or None if it does
        not read, the error if it does not read or does not hash to the digest it is stored under)."""
        out: list[tuple[str, Manifest | None, StorageError | None]] = []
        with self._tx() as s:
            docs = list(manifest_store.every(s))
        for digest, doc, error in docs:
            try:
                out.append((digest, None if doc is None else doc.manifest(), error))
            except (ValueError, KeyError, TypeError) as exc:
                out.append(
                    (
                        digest,
                        None,
                        CorruptCatalogError(f"version {digest[:12]}: its manifest does not read ({exc})"),
                    )
                )
        return out

    def create_tag(self, name: str, digest: str) -> None:
        """Name version ``digest``. Raises :class:`TagExistsError` if ``name`` was ever used."""
        check_tag_name(name)
        try:
            with self._tx(f"create tag {name!r}") as s:
                self._insert_tag(s, name, digest)
        except IntegrityError:
            raise TagExistsError(tag_exists_message(name)) from None

    def commit_version(
        self, manifest: Manifest | ManifestDoc, tag: str, message: str = "", parent: ManifestDoc | None = None
    ) -> str:
        """Create the version and its tag in one transaction; nothing is written if the tag exists.
        ``parent``: the parent's materialised manifest, when the caller has read it already."""
        check_tag_name(tag)
        doc = manifest if isinstance(manifest, ManifestDoc) else ManifestDoc.of(manifest)
        for attempt in range(2):
            try:
                with self._tx(f"commit version {tag!r}") as s:
                    digest = self._insert_version(s, doc, message, parent)
                    self._insert_tag(s, tag, digest)
                    return digest
            except IntegrityError:
                # A concurrent writer took the tag (retrying reports it) or froze the same version.
                if attempt:
                    raise TagExistsError(tag_exists_message(tag)) from None
        raise AssertionError("unreachable")

    def _insert_tag(self, s: Session, name: str, digest: str) -> None:
        if s.get(TagRow, name) is not None:
            raise TagExistsError(tag_exists_message(name))
        if s.get(VersionRow, digest) is None:
            raise UnknownVersionError(f"cannot tag {name!r}: no version {digest} in the catalog")
        s.add(TagRow(name=name, version_digest=digest, created_at=self._clock()))
        s.flush()

    def resolve_tag(self, name: str) -> str:
        """The version digest a tag names."""
        with self._tx() as s:
            row = s.get(TagRow, name)
            if row is not None:
                return row.version_digest
            known = list(s.scalars(select(TagRow.name).order_by(TagRow.created_at.desc(), TagRow.name)))
        raise UnknownTagError(unknown_tag_message(name, known))

    def list_tags(self) -> list[TagRecord]:
        """All tags, oldest first."""
        with self._tx() as s:
            rows = s.scalars(select(TagRow).order_by(TagRow.created_at, TagRow.name))
            return [TagRecord(r.name, r.version_digest, r.created_at) for r in rows]

    # -- seeds -------------------------------------------------------------------------------
    def allocate_seed(self, reserved: SeedRange, attempts: int = 20) -> int:
        """A collection seed this catalog has never handed out, outside ``reserved``."""
        for _ in range(attempts):
            try:
                with self._tx("hand out a seed") as s:
                    return seeds.allocate(s, reserved, self._clock())
            except IntegrityError:  # another process took the same seed first: take the next
                continue
        raise StorageError(f"could not hand out a seed after {attempts} tries: too many writers at once")

    def claim_seed(self, seed: int) -> bool:
        """Enter a seed chosen explicitly in the ledger; False if it had been used before."""
        try:
            with self._tx(f"enter seed {seed}") as s:
                return seeds.claim(s, seed, self._clock())
        except IntegrityError:  # claimed by another process at the same moment
            return False
