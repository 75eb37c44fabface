"""The catalog's schema migrations (Alembic), shipped in the package and run when a catalog opens.

Every table of the catalog (the store's and annotation's ``derivations``) is created by a revision
in ``versions/``; ``0001_baseline`` is the schema as it stood before migrations, so a catalog made
then upgrades in place. A new table or column is a new revision file (never an edit of an old one).

:func:`upgrade` brings a catalog to the newest revision under a lock (SQLite: an immediate
transaction; PostgreSQL: an advisory lock), so processes opening one catalog at the same moment
migrate it once. A catalog whose revision this code does not know was made by a newer takeover:
:class:`~takeover.storage.errors.SchemaTooNewError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, inspect, text

from takeover.storage.errors import SchemaTooNewError

VERSION_TABLE = "alembic_version"
HEAD = "0006_boundary_edits"
"""The newest revision in ``versions/`` (a test keeps them equal): a catalog there is opened
without loading Alembic at all."""
_PG_LOCK_KEY = 0x74616B656F766572  # 'takeover'


@cache
def _script() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def _config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent))
    return cfg


def head() -> str:
    """The newest revision this code knows."""
    return HEAD


def script_head() -> str:
    """The newest revision of the migration scripts (what :data:`HEAD` must say)."""
    return str(_script().get_current_head())


def known_revisions() -> set[str]:
    return {str(s.revision) for s in _script().walk_revisions()}


def current(conn: Connection) -> str | None:
    """The catalog's revision (None: made before migrations, or empty)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    rows = [str(r[0]) for r in conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))]
    return rows[0] if rows else None


def check_not_newer(revision: str | None, where: str) -> None:
    if revision is not None and revision != HEAD and revision not in known_revisions():
        raise SchemaTooNewError(
            f"the catalog {where} has schema revision {revision}, made by a newer version of takeover "
            f"(this one knows up to {head()}): upgrade takeover to use it"
        )


def upgrade(engine: Engine, where: str, frame_blobs: Callable[[str], Sequence[str]] | None = None) -> None:
    """Bring the catalog behind ``engine`` to :func:`head` (nothing is done when it is there)."""
    with engine.connect() as conn:
        rev = current(conn)
    check_not_newer(rev, where)
    if rev == head():
        return
    from alembic import command

    cfg = _config()
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock first: one migrator at a time
        else:
            conn.begin()
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        try:
            rev = current(conn)  # another process may have migrated while we waited
            check_not_newer(rev, where)
            if rev != head():
                cfg.attributes["connection"] = conn
                cfg.attributes["frame_blobs"] = frame_blobs
                command.upgrade(cfg, "head")
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("COMMIT")
            else:
                conn.commit()
        except BaseException:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("ROLLBACK")
            else:
                conn.rollback()
            raise
