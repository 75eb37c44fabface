"""Which blobs the catalog references: nothing referenced is ever removed (`repair`, `gc`).

A blob is referenced by any value of any column named ``digest`` or ending in ``_digest``, in any
table of the catalog (found by reflection, so a table a later migration adds, such as the
transcoder's ``episode_videos`` or a labels table, is covered without this code knowing it), and by
every blob a version's manifest pins (episode files, transcoded videos, derived blobs). A version
whose manifest cannot be read pins what nobody can tell: :attr:`References.unknown` then says so,
and the callers remove nothing, since they cannot prove any blob unreferenced.

Rows of the episodes in ``exclude`` (those `gc` is about to forget) are left out, through every
table with an ``episode_id`` column.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Connection, column, inspect, select, table
from sqlalchemy.orm import Session

from takeover.storage import manifest_store
from takeover.storage.migrations import VERSION_TABLE

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class References:
    digests: frozenset[str]
    """Every blob digest the catalog names."""
    held: frozenset[str]
    """The ids of the episodes some version holds."""
    unknown: str = ""
    """Why the catalog may name more than ``digests`` ('' when it does not)."""


def digest_columns(conn: Connection) -> dict[str, list[str]]:
    """Table -> its columns that hold digests (named ``digest`` or ``*_digest``)."""
    found: dict[str, list[str]] = {}
    inspector = inspect(conn)
    for name in inspector.get_table_names():
        if name == VERSION_TABLE:
            continue
        cols = [c["name"] for c in inspector.get_columns(name)]
        named = [c for c in cols if c == "digest" or c.endswith("_digest")]
        if named:
            found[name] = named
    return found


def episode_tables(conn: Connection) -> list[str]:
    """The tables with an ``episode_id`` column, ``episodes`` last (the others refer to it)."""
    inspector = inspect(conn)
    names = [n for n in inspector.get_table_names() if n != "episodes"]
    with_id = [n for n in sorted(names) if any(c["name"] == "episode_id" for c in inspector.get_columns(n))]
    return [*with_id, "episodes"]


def collect(s: Session, exclude: Collection[str] = ()) -> References:
    conn = s.connection()
    digests: set[str] = set()
    with_ids = set(episode_tables(conn))
    left_out = sorted(exclude)
    for name, cols in digest_columns(conn).items():
        if name == "versions":
            continue  # a version's own digest is no blob; its manifest is read below
        t = table(name, *(column(c) for c in [*cols, "episode_id"]))
        for c in cols:
            q = select(t.c[c]).distinct()
            if left_out and name in with_ids:
                q = q.where(t.c.episode_id.not_in(left_out))
            digests.update(str(v) for v in conn.execute(q).scalars() if v is not None)
    held: set[str] = set()
    unknown = ""
    for digest, doc, error in manifest_store.every(s):
        if doc is None:
            unknown = f"version {digest[:12]}: {error}"
            continue
        held.update(doc.entries)
        for entry in doc.entries.values():
            digests.add(str(entry["digest"]))
            digests.update(str(v) for v in entry.get("videos", {}).values())
            digests.update(str(v) for v in entry.get("derivations", {}).values())
    return References(frozenset(d for d in digests if _DIGEST.match(d)), frozenset(held), unknown)


def owners(s: Session, episode_ids: Collection[str]) -> dict[str, str]:
    """Blob digest -> the episode of ``episode_ids`` whose catalog rows name it (episode file,
    frame blobs, derived results, videos, ...), through every table with an ``episode_id`` column."""
    if not episode_ids:
        return {}
    conn = s.connection()
    ids = sorted(episode_ids)
    with_ids = set(episode_tables(conn))
    out: dict[str, str] = {}
    for name, cols in digest_columns(conn).items():
        if name not in with_ids or name == "versions":
            continue
        t = table(name, *(column(c) for c in [*cols, "episode_id"]))
        for c in cols:
            q = select(t.c.episode_id, t.c[c]).where(t.c.episode_id.in_(ids))
            for episode_id, digest in conn.execute(q):
                if digest is not None and _DIGEST.match(str(digest)):
                    out[str(digest)] = str(episode_id)
    return out
