"""The dataset store: a catalog plus immutable content-addressed blobs (episode files, frames).

Layout::

    <root>/store.json       marker: format, where the catalog and the blobs live
    <root>/catalog.db       SQLite catalog (unless an external catalog URL is used)
    <root>/blobs/sha256/..  episode HDF5 files and frame blobs, named by their sha256 (unless the
                            blobs live elsewhere: ``blob_url``, e.g. ``s3://bucket/prefix``)
    <root>/derived/blobs/.. results derived from episodes (annotation's smoothing, training labels)
    <root>/tmp/             episode files being written
    <root>/wal/<episode>/   the recorder's write-ahead logs of attempts being recorded

The blobs are reached through :attr:`Store.blobs` (a :class:`~takeover.storage.blobs.BlobStore`)
by digest only; the catalog knows every blob an episode needs, so committing a version reads the
catalog alone.

Adding an episode writes its file, stores it as a blob, and only then catalogs it, so an
interruption leaves at worst an orphan blob (harmless), never a catalog row without its blob.

A store in a folder this user may not write (read-only media, a snapshot, another user's data)
opens read-only: listing, reading and pulling work, and a write is refused with
:class:`ReadOnlyStoreError` before anything is touched. Disk and database failures come out as
:class:`StorageError` naming the path and what to do.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

from takeover.storage.blobs import BlobStore, LocalBlobStore, LocalFile, open_blob_store
from takeover.storage.boundary_edits import BoundaryEdits
from takeover.storage.catalog import (
    Catalog,
    EpisodeRecord,
    TagRecord,
    VersionRecord,
)
from takeover.storage.catalog_db import os_error, read_only_reason, sqlite_path, writable
from takeover.storage.child_version import derive, entry_of
from takeover.storage.consistency import (
    DEFAULT_GRACE_S,
    StoreReport,
    check_store,
    remove_stale_temp_files,
    repair_store,
)
from takeover.storage.deletions import Deletion
from takeover.storage.derived import DerivationPins, with_pins
from takeover.storage.episode_file import read_episode, read_header, write_episode
from takeover.storage.errors import (
    BlobNotFoundError,
    CatalogUnavailableError,
    DiskFullError,
    EmptySelectionError,
    ReadOnlyStoreError,
    StorageError,
    StoreExistsError,
    StoreNotFoundError,
    TagExistsError,
    UnknownEpisodeError,
    VersionChangeError,
)
from takeover.storage.gcpause import pausing_cycle_collector
from takeover.storage.label_revisions import LabelResolver, LabelRevisions
from takeover.storage.manifest import Manifest, ManifestEntry
from takeover.storage.schema import Episode, FrameBlob
from takeover.storage.seeds import SeedRange
from takeover.storage.tags import check_tag_name, tag_exists_message
from takeover.storage.tempfiles import locked_temp
from takeover.storage.video_rows import VideoRecord, pin_videos

STORE_FORMAT = "takeover.store"
STORE_FORMAT_VERSION = 1
MARKER = "store.json"


class Store:
    """A dataset store at ``root``. No I/O in the constructor: use :meth:`create`, :meth:`open`,
    :meth:`open_or_create` or :meth:`connect`, and :meth:`close` (or a with-block).

    ``catalog_url`` selects an external catalog (e.g. PostgreSQL for a fleet); by default the
    catalog is ``root/catalog.db`` (SQLite). ``blob_url`` selects where the blobs live (e.g.
    ``s3://bucket/prefix``); by default under ``root``. A store made with a blob URL records it in
    its marker, so opening it finds its blobs.
    """

    def __init__(
        self,
        root: Path | str,
        catalog_url: str | None = None,
        *,
        catalog_schema: str | None = None,
        blob_url: str | None = None,
    ) -> None:
        self.root = Path(root).expanduser()
        self.catalog_url = catalog_url
        self.catalog_schema = catalog_schema
        self._set_blobs(blob_url)
        url = catalog_url or f"sqlite:///{(self.root / 'catalog.db').absolute()}"
        self.catalog = Catalog(url, schema=catalog_schema, frame_blobs=self._frame_blobs_of)
        self.read_only = False
        """True when this user may not write the store (set by :meth:`connect`)."""

    def _set_blobs(self, blob_url: str | None) -> None:
        self.blob_url = blob_url
        self.blobs: BlobStore = open_blob_store(blob_url) if blob_url else LocalBlobStore(self.root)
        self.derived_blobs: BlobStore = self.blobs.sub("derived")
        """Blobs derived from episodes (annotation's smoothing and training labels), apart from the
        episode blobs."""

    def _frame_blobs_of(self, digest: str) -> Sequence[str]:
        """The frame blobs the episode file ``digest`` names (upgrading a catalog made before the
        catalog kept them)."""
        with self.blobs.open(digest) as f:
            return read_header(f).frame_blobs

    # -- lifecycle ---------------------------------------------------------------------------
    @classmethod
    def create(cls, root: Path | str, catalog_url: str | None = None, **kw: Any) -> Store:
        """Make a new store at ``root`` (the folder may exist but must not hold a store)."""
        store = cls(root, catalog_url, **kw)
        marker = store.root / MARKER
        if marker.exists():
            raise StoreExistsError(f"a dataset store already exists at {store.root}")
        if store.root.exists() and not store.root.is_dir():
            raise StoreExistsError(f"cannot create a dataset store at {store.root}: it is a file")
        info = {
            "format": STORE_FORMAT,
            "version": STORE_FORMAT_VERSION,
            "catalog": "external" if catalog_url else "sqlite",
        }
        if store.blob_url:
            info["blobs"] = store.blob_url
        try:
            store.root.mkdir(parents=True, exist_ok=True)
            if store.blob_url is None:
                (store.root / "blobs").mkdir(exist_ok=True)
            # The catalog first, the marker last: a store that could not be made complete is no store.
            store.catalog.connect()
            with locked_temp(store.root, prefix=f".{MARKER}-", suffix=".tmp") as (_, tmp):
                tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
                tmp.chmod(0o644)  # readable like the catalog, so other users can read the store
                os.replace(tmp, marker)
        except OSError as exc:
            store.close()
            raise os_error(exc, store.root, "create a dataset store") from None
        except DiskFullError:
            store.close()
            raise os_error(OSError(errno.ENOSPC, "full"), store.root, "create a dataset store") from None
        except StorageError:
            store.close()
            raise
        return store

    @classmethod
    def open(cls, root: Path | str, catalog_url: str | None = None, **kw: Any) -> Store:
        """Open an existing store; raises :class:`StoreNotFoundError` if there is none at ``root``."""
        return cls(root, catalog_url, **kw).connect()

    @classmethod
    def open_or_create(cls, root: Path | str, catalog_url: str | None = None, **kw: Any) -> Store:
        store = cls(root, catalog_url, **kw)
        if (store.root / MARKER).exists():
            return store.connect()
        return cls.create(root, catalog_url, **kw)

    def connect(self) -> Store:
        marker = self.root / MARKER
        if not self.root.exists():
            raise StoreNotFoundError(
                f"no dataset store at {self.root}: the folder does not exist "
                "(create one with `takeover data init --store PATH`, or set TAKEOVER_STORE)"
            )
        if not marker.is_file():
            raise StoreNotFoundError(f"{self.root} is not a dataset store (it has no {MARKER})")
        try:
            info = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read {marker}: {exc}") from None
        if info.get("format") != STORE_FORMAT or int(info.get("version", 0)) > STORE_FORMAT_VERSION:
            raise StorageError(f"{self.root} holds an unsupported store format: {info}")
        if self.blob_url is None and info.get("blobs"):
            self._set_blobs(str(info["blobs"]))
        if info.get("catalog") == "external" and self.catalog_url is None:
            raise StorageError(
                f"the store at {self.root} keeps its catalog in an external database; pass its catalog URL"
            )
        self._open_catalog()
        return self

    def _open_catalog(self) -> None:
        """Connect the catalog, read-only if this user may not write the store."""
        db = sqlite_path(self.catalog.url)
        if db is not None and not db.is_file():
            # Never start an empty catalog over a store's blobs: they would all look like orphans.
            raise CatalogUnavailableError(
                f"the catalog {db} of the store at {self.root} is missing: restore it from a backup "
                "(nothing was changed)"
            )
        if not writable(self.root / MARKER) or (db is not None and not writable(db)):
            self.read_only = True
            reason = read_only_reason(self.root / MARKER)
            self.catalog = Catalog(
                self.catalog.url, schema=self.catalog_schema, read_only=True, read_only_reason=reason
            )
        self.catalog.connect()

    def require_writable(self, doing: str) -> None:
        """Raise :class:`ReadOnlyStoreError` (saying what was refused) if the store is read-only."""
        if self.read_only:
            raise ReadOnlyStoreError(
                f"cannot {doing}: the store at {self.root} can only be read "
                f"({read_only_reason(self.root / MARKER)}); it can still be listed and pulled"
            )

    def close(self) -> None:
        self.catalog.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- episodes ----------------------------------------------------------------------------
    def add_episode(self, ep: Episode) -> str:
        """Store ``ep`` immutably and catalog it; returns the digest of its file.

        Cameras whose frames are a :class:`FrameBlob` (a finished camera log) have that blob
        stored first (a local store adopts the log without copying); the episode file then only
        indexes it, and the catalog lists it.
        """
        ep.validate()
        self.require_writable(f"add episode {ep.meta.episode_id}")
        frame_blobs = []
        for cam in ep.cameras.values():
            if isinstance(cam.frames, FrameBlob):
                self._store_frame_blob(cam.frames)
                frame_blobs.append(cam.frames.digest)
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(exist_ok=True)
        with locked_temp(tmp_dir, prefix=f".{_safe(ep.meta.episode_id)}-", suffix=".h5") as (_, tmp):
            write_episode(ep, tmp)
            digest = self.blobs.put_file(tmp)
        self.catalog.add_episode(ep.meta, digest, ep.num_steps, ep.events, frame_blobs)
        return digest

    def _store_frame_blob(self, frames: FrameBlob) -> None:
        if isinstance(frames.source, LocalFile):
            self.blobs.adopt_file(frames.source.path, frames.digest)
        elif not self.blobs.has(frames.digest):
            opener = getattr(frames.source, "open", None)  # another store's blobs
            if opener is None:
                raise StorageError(f"frame blob {frames.digest} is in no store and no file")
            with opener(frames.digest) as f:
                self.blobs.put_stream(f, frames.digest)

    def get_episode(self, episode_id: str) -> EpisodeRecord:
        return self.catalog.get_episode(episode_id)

    def list_episodes(self, **filters: Any) -> list[EpisodeRecord]:
        """See :meth:`Catalog.list_episodes` for the filters."""
        return self.catalog.list_episodes(**filters)

    @property
    def labels(self) -> LabelRevisions:
        """The episodes' label revisions: append, history, each annotator's newest
        (:mod:`takeover.storage.label_revisions`; writes are refused when the store is read-only)."""
        return self.catalog.labels

    @property
    def boundaries(self) -> BoundaryEdits:
        """The edits of the episodes' takeovers and hand-backs: append, history, the edit that
        counts of each (:mod:`takeover.storage.boundary_edits`)."""
        return self.catalog.boundaries

    def delete_episodes(self, episode_ids: Sequence[str], reason: str = "") -> dict[str, Deletion]:
        """Delete episodes softly (:mod:`takeover.storage.deletions`): left out of listings and new
        versions, readable while a version holds them; `gc` removes them after the retention."""
        self.require_writable(f"delete {len(episode_ids)} episode(s)")
        return self.catalog.delete_episodes(episode_ids, reason)

    def undelete_episodes(self, episode_ids: Sequence[str]) -> list[str]:
        """Take deletions back; returns the ids that were deleted."""
        self.require_writable(f"undelete {len(episode_ids)} episode(s)")
        return self.catalog.undelete_episodes(episode_ids)

    def read_episode(self, episode_id: str) -> Episode:
        """The episode, its frames read lazily from the blob store."""
        with self.open_blob(self.get_episode(episode_id).blob_digest) as f:
            return read_episode(f, self.blobs)

    def videos_of(self, episode_ids: Sequence[str] | None = None) -> dict[str, list[VideoRecord]]:
        """Episode id -> its camera streams transcoded to video (``takeover.storage.transcode``
        makes them; ``open_video`` reads them), for the given episodes or all."""
        return self.catalog.videos_of(episode_ids)

    def open_blob(self, digest: str) -> BinaryIO:
        """The blob for reading (:class:`BlobNotFoundError` naming this store if it is missing)."""
        try:
            return self.blobs.open(digest)
        except BlobNotFoundError:
            raise BlobNotFoundError(f"blob {digest} is missing from the store at {self.where}") from None

    @property
    def where(self) -> str:
        """The store as messages name it: its folder, and its blob URL when the blobs live elsewhere."""
        return f"{self.root} (blobs at {self.blobs.url})" if self.blob_url else str(self.root)

    # -- consistency -------------------------------------------------------------------------
    def check(
        self, *, verify: bool = True, grace_s: float = DEFAULT_GRACE_S, now: float | None = None
    ) -> StoreReport:
        """Damaged episodes, orphan blobs (unreferenced and older than ``grace_s``), blobs in
        flight and temporary files (see :mod:`takeover.storage.consistency`)."""
        return check_store(self.root, self.catalog, self.blobs, verify=verify, grace_s=grace_s, now=now)

    def remove_stale_temp_files(self) -> list[str]:
        """Delete temporary files that crashed writers left (never one a live writer holds)."""
        return remove_stale_temp_files(self.root, self.blobs)

    def repair(
        self, report: StoreReport | None = None, *, grace_s: float = DEFAULT_GRACE_S, now: float | None = None
    ) -> list[str]:
        """Remove orphan blobs and temporary files; returns one line per action. A blob younger
        than ``grace_s`` or referenced by anything in the catalog is never removed."""
        found = report or self.check(grace_s=grace_s, now=now)
        return repair_store(found, self.catalog, self.blobs, grace_s=grace_s, now=now)

    @property
    def wal_dir(self) -> Path:
        """Where the recorder keeps the write-ahead logs of attempts being recorded."""
        return self.root / "wal"

    # -- versions and tags -------------------------------------------------------------------
    @pausing_cycle_collector
    def commit(
        self,
        tag: str,
        episode_ids: Sequence[str] | None = None,
        message: str = "",
        include_interrupted: bool = False,
        parent: str = "",
        videos: bool | Sequence[str] = False,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        trim: Mapping[str, tuple[int, int]] | None = None,
        labels: LabelResolver | None = None,
        derived: DerivationPins | None = None,
        query: str = "",
    ) -> tuple[str, Manifest]:
        """Freeze episodes as a version and name it ``tag``; returns its digest and manifest.

        With ``add``, ``remove`` or ``trim``: version ``parent`` (a tag) changed by them (episode
        ids to add and to remove, ``{id: (start, stop)}`` step ranges to keep; see
        :mod:`takeover.storage.child_version`). Else the given episodes, or without
        ``episode_ids`` all of them but the interrupted ones (end reason 'interrupted') unless
        ``include_interrupted``; ``parent`` then only records the lineage (`data log`). Deleted
        episodes are never taken (``created_from`` counts those left out). ``videos``: pin the
        transcoded camera streams of the episodes taken (of a child: of those added; True: of
        every camera transcoded, or the cameras named), refused if any is missing. ``labels``: the
        label each episode taken gets (of a child: each episode added), with its pin
        (:class:`~takeover.storage.label_revisions.PinnedLabel`); without it, or for an episode it
        gives none, the operator's verdict in the episode record. ``derived``: the derivations
        every entry of the version pins (called with all its entries, labels applied; see
        :mod:`takeover.storage.derived`); a version made from a parent never keeps the parent's.
        ``query``: the curation query that chose ``episode_ids`` (:mod:`takeover.annotation.curation`),
        recorded in the manifest's ``created_from`` as ``{"selection": "query", "query": ...}``.
        """
        check_tag_name(tag)
        self.require_writable(f"commit version {tag!r}")
        parent_digest = self.catalog.resolve_tag(parent) if parent else ""
        if tag in {t.name for t in self.catalog.list_tags()}:
            raise TagExistsError(tag_exists_message(tag))
        if query and episode_ids is None:
            raise VersionChangeError("a query names the episodes it chose: pass them (episode_ids)")
        if add or remove or trim:
            if query:
                raise VersionChangeError(
                    "--query chooses the whole selection; --add, --remove and --trim change the parent's: "
                    "use one or the other"
                )
            if not parent:
                raise VersionChangeError(
                    "adding, removing or trimming changes a version: name it (--parent TAG)"
                )
            if episode_ids is not None:
                raise VersionChangeError(
                    "--episodes names the whole selection; --add, --remove and --trim change the parent's: "
                    "use one or the other"
                )
            return self._commit_changes(
                tag, message, parent, parent_digest, add, remove, trim or {}, videos, labels, derived
            )
        deleted = set(self.catalog.deletions())
        if episode_ids is None:
            out = () if include_interrupted else ("interrupted",)
            records = self.catalog.list_episodes(end_reasons_out=out)
            interrupted = self.catalog.count_episodes() - len(deleted) - len(records)
            if not records:
                but = " but interrupted ones (add --include-interrupted to take them)" if interrupted else ""
                gone = f" ({len(deleted)} deleted)" if deleted else ""
                raise EmptySelectionError(
                    f"nothing to commit: the store at {self.root} has no episodes{but}{gone}"
                )
            created_from: dict[str, Any] = {"selection": "all"}
            left_out = {k: n for k, n in (("deleted", len(deleted)), ("interrupted", interrupted)) if n}
            if left_out:
                created_from["left_out"] = left_out
        else:
            wanted = sorted(set(episode_ids))
            if not wanted:
                raise EmptySelectionError("nothing to commit: the selection names no episodes")
            records = self._records(tag, wanted, deleted)
            created_from = {"selection": "query", "query": query} if query else {"selection": "episode_ids"}
        # Everything comes from the catalog: no episode file is opened (`check` verifies the blobs).
        entries = self._pinned(tag, _labelled(records, labels), videos, every=episode_ids is None)
        if derived is not None:
            entries = with_pins(tag, entries, derived)
        manifest = Manifest.build(entries, created_from, parent=parent_digest)
        digest = self.catalog.commit_version(manifest, tag, message)
        return digest, manifest

    def _pinned(
        self, tag: str, entries: list[ManifestEntry], videos: bool | Sequence[str], every: bool = False
    ) -> list[ManifestEntry]:
        """``entries`` with their transcoded videos pinned when ``videos`` asks for them (``every``:
        the entries are every episode taken, so all videos are looked up at once)."""
        if not videos:
            return entries
        cameras = None if isinstance(videos, bool) else list(videos)
        found = self.catalog.videos_of(None if every else [e.episode_id for e in entries])
        return pin_videos(tag, entries, found, cameras)

    def _records(self, tag: str, wanted: Sequence[str], deleted: Collection[str]) -> list[EpisodeRecord]:
        """The cataloged, undeleted episodes ``wanted`` (one line naming those that are not)."""
        records = self.catalog.list_episodes(episode_ids=wanted, deleted=None)
        missing = sorted(set(wanted) - {r.episode_id for r in records})
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise UnknownEpisodeError(f"cannot commit {tag!r}: no such episodes: {shown}")
        gone = sorted(set(wanted) & set(deleted))
        if gone:
            raise VersionChangeError(
                f"cannot commit {tag!r}: deleted: {', '.join(gone[:5])} "
                "(`takeover data undelete ID` takes a deletion back)"
            )
        return records

    def _commit_changes(
        self,
        tag: str,
        message: str,
        parent: str,
        parent_digest: str,
        add: Sequence[str],
        remove: Sequence[str],
        trim: Mapping[str, tuple[int, int]],
        videos: bool | Sequence[str],
        labels: LabelResolver | None,
        derived: DerivationPins | None,
    ) -> tuple[str, Manifest]:
        base = self.catalog.version_doc(parent_digest)
        added = self._records(tag, sorted(set(add)), ()) if add else []
        if videos and not added:
            raise VersionChangeError("--videos pins the videos of the episodes added: add some (--add ID)")
        entries = self._pinned(tag, _labelled(added, labels), videos)
        deleted = self.catalog.deletions()
        child = derive(base, parent_digest, parent, entries, set(remove), trim, deleted)
        if derived is not None:
            every = [ManifestEntry.from_checked_json(e) for e in child.entries.values()]
            child.entries.update((e.episode_id, e.to_json()) for e in with_pins(tag, every, derived))
        digest = self.catalog.commit_version(child, tag, message, parent=base)
        return digest, child.manifest()

    def pin_derived(
        self, tag: str, parent: str, derived: DerivationPins, message: str = ""
    ) -> tuple[str, Manifest]:
        """Freeze version ``parent``'s episodes again (labels, step ranges and videos as they are)
        as version ``tag``, each entry pinning what ``derived`` gives it."""
        check_tag_name(tag)
        self.require_writable(f"commit version {tag!r}")
        parent_digest = self.catalog.resolve_tag(parent)
        if tag in {t.name for t in self.catalog.list_tags()}:
            raise TagExistsError(tag_exists_message(tag))
        return self._commit_changes(tag, message, parent, parent_digest, (), (), {}, False, None, derived)

    def resolve(self, tag: str) -> VersionRecord:
        """The version a tag names (raises :class:`UnknownTagError`)."""
        return self.catalog.get_version(self.catalog.resolve_tag(tag))

    def lineage(self, tag: str) -> list[VersionRecord]:
        """The version ``tag`` names, then its parent, its parent's parent, ... (oldest last)."""
        chain = [self.resolve(tag)]
        seen = {chain[0].digest}
        while chain[-1].manifest.parent:
            parent = self.catalog.get_version(chain[-1].manifest.parent)
            if parent.digest in seen:  # a hash cycle cannot be made; never loop on a damaged catalog
                break
            seen.add(parent.digest)
            chain.append(parent)
        return chain

    def episodes_in(self, tag: str) -> list[ManifestEntry]:
        return list(self.resolve(tag).manifest.episodes)

    def tags(self) -> list[TagRecord]:
        return self.catalog.list_tags()

    # -- seeds -------------------------------------------------------------------------------
    def allocate_seed(self, reserved: SeedRange) -> int:
        """A collection seed this store has never handed out, outside the ``reserved`` range."""
        self.require_writable("hand out a collection seed")
        return self.catalog.allocate_seed(reserved)

    def claim_seed(self, seed: int) -> bool:
        """Enter an explicitly chosen seed, so the store never hands it out; False if used before."""
        self.require_writable(f"enter seed {seed}")
        return self.catalog.claim_seed(seed)


def _labelled(records: Sequence[EpisodeRecord], labels: LabelResolver | None) -> list[ManifestEntry]:
    """The manifest entries of ``records``, each with the label ``labels`` gives it and its pin."""
    entries = [entry_of(r) for r in records]
    if labels is None or not entries:
        return entries
    pinned = labels([e.episode_id for e in entries])
    return [
        replace(e, outcome=p.outcome, labels=p.pin) if (p := pinned.get(e.episode_id)) is not None else e
        for e in entries
    ]


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:40]
