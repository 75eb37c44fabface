"""The catalog's database connection: opening it, and saying in a person's words what went wrong.

SQLite catalogs run in WAL mode, which needs to create ``catalog.db-wal`` and ``-shm`` beside the
database even to read it. A catalog in a folder this user may not write (read-only permissions,
a read-only file system, a mounted snapshot) is therefore opened *read-only*: ``mode=ro``, or
``immutable=1`` when even the shared-memory file cannot be created. Reads then work; a write is
refused up front with :class:`~takeover.storage.errors.ReadOnlyStoreError`.

Database errors (SQLite or PostgreSQL) become :class:`~takeover.storage.errors.StorageError`
subclasses whose message names the catalog and what to do, never the driver's wording.
"""

from __future__ import annotations

import errno
import os
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from takeover.storage.errors import (
    CatalogUnavailableError,
    CorruptCatalogError,
    DiskFullError,
    ReadOnlyStoreError,
    StorageError,
)

BUSY_TIMEOUT_MS = 10_000


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (None for another backend, an in-memory database or a URL
    that does not parse: opening it says so)."""
    try:
        u = make_url(url)
    except ArgumentError:
        return None
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def describe(url: str) -> str:
    """How messages name the catalog: its file, or its URL without the password."""
    path = sqlite_path(url)
    if path is not None:
        return str(path)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", url)


def writable(path: Path) -> bool:
    """True if this user may create files beside ``path`` and write it (if it exists)."""
    folder_ok = os.access(path.parent, os.W_OK | os.X_OK)
    return folder_ok and (not path.exists() or os.access(path, os.W_OK))


def read_only_reason(path: Path) -> str:
    try:
        if os.statvfs(path.parent).f_flag & os.ST_RDONLY:
            return "it is on a read-only file system"
    except OSError:
        pass
    return "this user may not write there"


def with_driver(url: str) -> str:
    """``url`` with the PostgreSQL driver this package installs (psycopg 3) where it names none:
    SQLAlchemy's default for ``postgresql://`` is psycopg2, which is not installed."""
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg://" + url[len(bare) :]
    return url


def open_engine(url: str, *, read_only: bool, schema: str | None) -> Engine:
    """An engine for ``url`` (no connection is made yet)."""
    path = sqlite_path(url)
    try:
        if path is not None and read_only:
            engine = create_engine(url, creator=_read_only_creator(path))
        else:
            engine = create_engine(with_driver(url))
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise CatalogUnavailableError(
            f"the catalog URL {describe(url)} is not one this program can open ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:120]}); use sqlite:///path/catalog.db or "
            "postgresql+psycopg://user@host:5432/database"
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas(wal=not read_only))
    if schema is not None:
        event.listen(engine, "connect", _search_path_setter(schema), insert=True)
    return engine


def _read_only_creator(path: Path) -> Callable[[], sqlite3.Connection]:
    uri = path.absolute().as_uri()

    def connect() -> sqlite3.Connection:
        if not path.is_file():
            # mode=ro would say "unable to open database file"; say which file is missing.
            raise CatalogUnavailableError(f"the catalog {path} does not exist: this is not a complete store")
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            name = str(getattr(exc, "sqlite_errorname", ""))
            if name != "SQLITE_CANTOPEN" and not name.startswith("SQLITE_READONLY"):
                raise
        # A WAL database needs its -shm file even to read; where it cannot be created (nothing
        # can write here, so nothing can change the file either) read it as immutable.
        return sqlite3.connect(f"{uri}?immutable=1", uri=True, check_same_thread=False)

    return connect


def _sqlite_pragmas(*, wal: bool) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cur = dbapi_connection.cursor()
        if wal:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.close()

    return on_connect


def _search_path_setter(schema: str) -> Callable[[Any, Any], None]:
    def set_search_path(dbapi_connection: Any, _record: Any) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        cur = dbapi_connection.cursor()
        cur.execute(f'SET SESSION search_path TO "{schema}"')
        cur.close()
        dbapi_connection.autocommit = autocommit

    return set_search_path


# -- what went wrong ----------------------------------------------------------------------------
def _sqlite_error(name: str, where: str, read_only_why: str) -> StorageError:
    if name in ("SQLITE_FULL", "SQLITE_IOERR_SHMSIZE"):  # SHMSIZE: no room to grow the -shm file
        return DiskFullError(
            f"the disk holding the catalog {where} is full: free some space and run the command again "
            "(the catalog was not changed)"
        )
    if name.startswith("SQLITE_READONLY"):
        return ReadOnlyStoreError(
            f"the catalog {where} is read-only ({read_only_why}): writing to it needs write access to "
            "the store folder and its catalog files"
        )
    if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or name.startswith("SQLITE_CORRUPT"):
        return CorruptCatalogError(
            f"the catalog {where} is damaged (not a readable SQLite database): restore it from a "
            "backup; the episode files under blobs/ are not affected"
        )
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED"):
        return CatalogUnavailableError(
            f"the catalog {where} stayed locked by another process for {BUSY_TIMEOUT_MS // 1000} s: "
            "try again when it has finished"
        )
    if name.startswith("SQLITE_CANTOPEN"):
        return CatalogUnavailableError(
            f"cannot open the catalog {where}: check that the file and its folder exist and this user may "
            "read them"
        )
    if name.startswith("SQLITE_IOERR"):
        return CatalogUnavailableError(
            f"the disk failed while reading or writing the catalog {where} ({name}): check the disk"
        )
    return CatalogUnavailableError(f"the catalog {where} refused the request ({name or 'unknown error'})")


_PG_DISK_FULL = "53100"
_PG_READ_ONLY = "25006"


def translate(exc: DBAPIError, url: str) -> StorageError:
    """A database error (from SQLAlchemy) as a :class:`StorageError` a person can act on.

    ``url`` names the catalog in the message ('' when the caller does not know it)."""
    where = describe(url) if url else "of this store"
    orig = exc.orig
    path = sqlite_path(url) if url else None
    if isinstance(orig, sqlite3.Error):
        why = read_only_reason(path) if path is not None else "it was opened read-only"
        return _sqlite_error(str(getattr(orig, "sqlite_errorname", "")), where, why)
    sqlstate = str(getattr(orig, "sqlstate", "") or "")
    if sqlstate == _PG_DISK_FULL:
        return DiskFullError(f"the catalog database {where} has no disk space left: free space on its server")
    if sqlstate == _PG_READ_ONLY:
        return ReadOnlyStoreError(f"the catalog database {where} accepts only reads: use a writable server")
    if not sqlstate or sqlstate.startswith("08"):
        return CatalogUnavailableError(
            f"cannot reach the catalog database {where}: check that the server is running and the URL"
        )
    return CatalogUnavailableError(
        f"the catalog database {where} refused the request (SQLSTATE {sqlstate}): see the server's log"
    )


def os_error(exc: OSError, path: Path, doing: str) -> StorageError:
    """A file-system error while ``doing`` something at ``path``, as a :class:`StorageError`."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"cannot {doing} at {path}: the disk is full: free some space and try again")
    if exc.errno == errno.EROFS:
        return ReadOnlyStoreError(f"cannot {doing} at {path}: it is on a read-only file system")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return ReadOnlyStoreError(f"cannot {doing} at {path}: this user may not write there")
    return StorageError(f"cannot {doing} at {path}: {exc.strerror or type(exc).__name__}")
