"""The dataset store: a catalog plus immutable content-addressed episode files under one root.

Layout::

    <root>/store.json       marker: format and where the catalog lives
    <root>/catalog.db       SQLite catalog (unless an external catalog URL is used)
    <root>/blobs/sha256/..  episode HDF5 files, named by their sha256
    <root>/tmp/             episode files being written
    <root>/wal/<episode>/   the recorder's write-ahead logs of attempts being recorded

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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from takeover.storage.blobs import LocalBlobStore
from takeover.storage.catalog import (
    Catalog,
    EpisodeRecord,
    TagRecord,
    VersionRecord,
    check_tag_name,
)
from takeover.storage.catalog_db import os_error, read_only_reason, sqlite_path, writable
from takeover.storage.consistency import (
    StoreReport,
    check_store,
    remove_stale_temp_files,
    repair_store,
)
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
)
from takeover.storage.manifest import Manifest, ManifestEntry
from takeover.storage.schema import Episode, FrameBlob
from takeover.storage.seeds import SeedRange
from takeover.storage.tempfiles import locked_temp

STORE_FORMAT = "takeover.store"
STORE_FORMAT_VERSION = 1
MARKER = "store.json"


class Store:
    """A dataset store at ``root``. No I/O in the constructor: use :meth:`create`, :meth:`open`,
    :meth:`open_or_create` or :meth:`connect`, and :meth:`close` (or a with-block).

    ``catalog_url`` selects an external catalog (e.g. PostgreSQL for a fleet); by default the
    catalog is ``root/catalog.db`` (SQLite).
    """

    def __init__(
        self, root: Path | str, catalog_url: str | None = None, *, catalog_schema: str | None = None
    ) -> None:
        self.root = Path(root).expanduser()
        self.catalog_url = catalog_url
        self.catalog_schema = catalog_schema
        self.blobs = LocalBlobStore(self.root)
        url = catalog_url or f"sqlite:///{(self.root / 'catalog.db').absolute()}"
        self.catalog = Catalog(url, schema=catalog_schema)
        self.read_only = False
        """True when this user may not write the store (set by :meth:`connect`)."""

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
        try:
            (store.root / "blobs").mkdir(parents=True, exist_ok=True)
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

        Cameras whose frames are a :class:`FrameBlob` (a finished camera log) have that file
        adopted as a blob without copying; the episode file then only indexes it.
        """
        ep.validate()
        self.require_writable(f"add episode {ep.meta.episode_id}")
        for cam in ep.cameras.values():
            if isinstance(cam.frames, FrameBlob):
                self.blobs.adopt_file(cam.frames.path, cam.frames.digest)
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(exist_ok=True)
        with locked_temp(tmp_dir, prefix=f".{_safe(ep.meta.episode_id)}-", suffix=".h5") as (_, tmp):
            write_episode(ep, tmp)
            digest = self.blobs.put_file(tmp)
        self.catalog.add_episode(ep.meta, digest, ep.num_steps, ep.events)
        return digest

    def get_episode(self, episode_id: str) -> EpisodeRecord:
        return self.catalog.get_episode(episode_id)

    def list_episodes(self, **filters: Any) -> list[EpisodeRecord]:
        """See :meth:`Catalog.list_episodes` for the filters."""
        return self.catalog.list_episodes(**filters)

    def episode_path(self, episode_id: str) -> Path:
        return self.blob_path(self.get_episode(episode_id).blob_digest)

    def blob_path(self, digest: str) -> Path:
        p = self.blobs.path(digest)
        if not p.is_file():
            raise BlobNotFoundError(f"blob {digest} is missing from the store at {self.root}")
        return p

    def read_episode(self, episode_id: str) -> Episode:
        return read_episode(self.episode_path(episode_id))

    # -- consistency -------------------------------------------------------------------------
    def check(self, *, verify: bool = True) -> StoreReport:
        """Damaged episodes, orphan blobs and temporary files (see :mod:`takeover.storage.consistency`)."""
        return check_store(self.root, self.catalog, self.blobs, verify=verify)

    def remove_stale_temp_files(self) -> list[str]:
        """Delete temporary files that crashed writers left (never one a live writer holds)."""
        return remove_stale_temp_files(self.root, self.blobs)

    def repair(self, report: StoreReport | None = None) -> list[str]:
        """Remove orphan blobs and temporary files; returns one line per action."""
        return repair_store(report or self.check(), self.blobs)

    @property
    def wal_dir(self) -> Path:
        """Where the recorder keeps the write-ahead logs of attempts being recorded."""
        return self.root / "wal"

    # -- versions and tags -------------------------------------------------------------------
    def commit(
        self,
        tag: str,
        episode_ids: Sequence[str] | None = None,
        message: str = "",
        include_interrupted: bool = False,
    ) -> tuple[str, Manifest]:
        """Freeze the given episodes as a version and name it ``tag``. Without ``episode_ids``: all
        of them but the interrupted ones (end reason 'interrupted'), unless ``include_interrupted``."""
        check_tag_name(tag)
        self.require_writable(f"commit version {tag!r}")
        if tag in {t.name for t in self.catalog.list_tags()}:
            raise TagExistsError(
                f"tag {tag!r} already exists; tags are never moved or reused, choose a new name"
            )
        if episode_ids is None:
            out = () if include_interrupted else ("interrupted",)
            records = self.catalog.list_episodes(end_reasons_out=out)
            left_out = self.catalog.count_episodes() - len(records)
            if not records:
                but = " but interrupted ones (add --include-interrupted to take them)" if left_out else ""
                raise EmptySelectionError(f"nothing to commit: the store at {self.root} has no episodes{but}")
            created_from: dict[str, Any] = {"selection": "all"}
            if left_out:
                created_from["left_out"] = {"interrupted": left_out}
        else:
            wanted = sorted(set(episode_ids))
            if not wanted:
                raise EmptySelectionError("nothing to commit: the selection names no episodes")
            records = self.catalog.list_episodes(episode_ids=wanted)
            missing = sorted(set(wanted) - {r.episode_id for r in records})
            if missing:
                shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                raise UnknownEpisodeError(f"cannot commit {tag!r}: no such episodes: {shown}")
            created_from = {"selection": "episode_ids"}
        for r in records:  # a version never names a missing blob
            for digest in read_header(self.blob_path(r.blob_digest)).frame_blobs:
                self.blob_path(digest)
        entries = [
            ManifestEntry(r.episode_id, r.blob_digest, r.num_steps, r.success, r.outcome) for r in records
        ]
        manifest = Manifest.build(entries, created_from)
        digest = self.catalog.commit_version(manifest, tag, message)
        return digest, manifest

    def resolve(self, tag: str) -> VersionRecord:
        """The version a tag names (raises :class:`UnknownTagError`)."""
        return self.catalog.get_version(self.catalog.resolve_tag(tag))

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


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:40]
