"""How version manifests are kept in the catalog: whole, or as the change from their parent.

A version made from a parent is stored as a *delta*: the entries added or changed and the ids
removed, with the manifest's other fields, so a parent plus 50 episodes costs in proportion to the
50, not to the parent. The full manifest is stored instead every :data:`FULL_EVERY` levels, and
whenever the deltas down to the last full manifest would together outgrow the manifest itself: a
read applies at most ``FULL_EVERY - 1`` deltas, and reads at most twice a full manifest's bytes.

Delta (canonical JSON, in ``versions.manifest`` with ``versions.base`` naming the parent)::

    {"format": "takeover.manifest-delta/1",
     "manifest": {...every field of the manifest but "episodes"...},
     "put": [...entries added or changed, sorted by id...], "remove": [...ids, sorted...]}

Storage never changes identity: a version's digest is the sha256 of its *full* canonical
manifest, and reading a version materialises it and checks that digest again
(:class:`~takeover.storage.errors.CorruptCatalogError` if it does not match).

Materialising works on the manifest's JSON objects (:class:`ManifestDoc`), not on
:class:`~takeover.storage.manifest.ManifestEntry` objects, so a commit of a parent plus a few
changes never builds ten thousand entries it does not change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Text, case, func, literal, select
from sqlalchemy.orm import Session

from takeover.storage.errors import CorruptCatalogError, UnknownVersionError
from takeover.storage.manifest import MANIFEST_FORMAT, Manifest, canonical_json
from takeover.storage.tables import VersionRow

DELTA_FORMAT = "takeover.manifest-delta/1"
FULL_EVERY = 16
"""A full manifest at least every this many levels of a lineage (bounds the deltas a read applies)."""
RESTORE_CATALOG = "restore the catalog from a backup"


@dataclass
class ManifestDoc:
    """A manifest as JSON: its fields but the entries (``top``) and its entries by episode id."""

    top: dict[str, Any]
    entries: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, manifest: Manifest) -> ManifestDoc:
        obj = manifest.to_json()
        return cls.from_json(obj)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ManifestDoc:
        if obj.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"unsupported manifest format {obj.get('format')!r}")
        top = {k: v for k, v in obj.items() if k != "episodes"}
        return cls(top, {str(e["episode_id"]): e for e in obj["episodes"]})

    @property
    def parent(self) -> str:
        return str(self.top.get("parent", ""))

    def to_json(self) -> dict[str, Any]:
        return {**self.top, "episodes": [self.entries[i] for i in sorted(self.entries)]}

    def canonical_json(self) -> str:
        return canonical_json(self.to_json())

    def manifest(self, *, checked: bool = True) -> Manifest:
        """As a :class:`Manifest`; ``checked``: its entries were validated when they were made (a
        version read and checked against its digest, or entries built by the constructor)."""
        return Manifest.from_json(self.to_json(), checked=checked)

    def delta_from(self, parent: ManifestDoc) -> dict[str, Any]:
        """What changed from ``parent`` to this manifest, as a delta object."""
        put = [e for i, e in sorted(self.entries.items()) if parent.entries.get(i) != e]
        remove = sorted(parent.entries.keys() - self.entries.keys())
        return {"format": DELTA_FORMAT, "manifest": self.top, "put": put, "remove": remove}

    def apply(self, delta: dict[str, Any]) -> ManifestDoc:
        """The manifest ``delta`` makes of this one (this one is left as it is)."""
        if delta.get("format") != DELTA_FORMAT:
            raise ValueError(f"unsupported manifest delta format {delta.get('format')!r}")
        entries = dict(self.entries)
        for episode_id in delta["remove"]:
            del entries[episode_id]
        for e in delta["put"]:
            entries[str(e["episode_id"])] = e
        return ManifestDoc(dict(delta["manifest"]), entries)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Stored:
    """How a version is stored: its bytes in the catalog, and how many deltas lie under it."""

    bytes: int
    depth: int
    delta: bool


def freeze(
    s: Session, doc: ManifestDoc, *, created_at: float, message: str, parent: ManifestDoc | None
) -> str:
    """Insert the version ``doc`` (if new) and return its digest. ``parent``: the materialised
    parent when the caller has it (else it is read here when a delta is worth storing)."""
    full = doc.canonical_json()
    digest = sha256_text(full)
    if s.scalar(select(VersionRow.digest).where(VersionRow.digest == digest)) is not None:
        return digest
    base, depth, stored = None, 0, full
    lineage = _chain(s, doc.parent, text=False) if doc.parent else []
    if lineage and lineage[0].depth + 1 < FULL_EVERY:
        if parent is None:
            parent = _materialise(s, doc.parent)
        delta = canonical_json(doc.delta_from(parent))
        # Reading a version reads its full manifest and the deltas above it: keep those deltas
        # together no larger than the manifest itself, so a read costs at most twice a whole one.
        if sum(link.length for link in lineage) + len(delta) <= len(full):
            base, depth, stored = doc.parent, lineage[0].depth + 1, delta
    s.add(
        VersionRow(
            digest=digest, manifest=stored, created_at=created_at, message=message, base=base, depth=depth
        )
    )
    s.flush()
    return digest


class _Link(NamedTuple):
    """A version as its lineage's storage needs it."""

    digest: str
    base: str | None
    depth: int
    length: int
    """Characters of the stored delta (0 for a whole manifest, which is not measured)."""
    text: str | None


def _chain(s: Session, digest: str, *, text: bool) -> list[_Link]:
    """Version ``digest``, then the version its delta applies to, ... down to a whole manifest
    (or to a base the catalog lacks: the last link's ``base`` is then not None), in one query;
    ``text``: with the stored texts."""
    v = VersionRow.__table__
    length = case((v.c.base.is_(None), 0), else_=func.length(v.c.manifest))
    stored = v.c.manifest if text else literal(None, Text)
    first = select(
        v.c.digest, v.c.base, v.c.depth, length.label("length"), stored.label("text"), literal(0).label("n")
    )
    chain = first.where(v.c.digest == digest).cte("chain", recursive=True)
    step = select(v.c.digest, v.c.base, v.c.depth, length, stored, chain.c.n + 1).join(
        chain, v.c.digest == chain.c.base
    )
    chain = chain.union_all(step.where(chain.c.n < 4 * FULL_EVERY))
    q = select(chain.c.digest, chain.c.base, chain.c.depth, chain.c.length, chain.c.text).order_by(chain.c.n)
    return [_Link(str(d), b, int(dp), int(n), t) for d, b, dp, n, t in s.execute(q)]


def load(s: Session, digest: str) -> tuple[float, str, ManifestDoc]:
    """The version's creation time, message and materialised manifest, checked against its digest."""
    row = s.execute(
        select(VersionRow.created_at, VersionRow.message).where(VersionRow.digest == digest)
    ).one_or_none()
    if row is None:
        raise UnknownVersionError(f"no version {digest} in the catalog")
    return float(row[0]), str(row[1]), _materialise(s, digest)


def _materialise(
    s: Session, digest: str, memo: dict[str, ManifestDoc] | None = None, *, check: bool = True
) -> ManifestDoc:
    """Apply the deltas from the nearest full manifest up to version ``digest`` and (``check``)
    check its hash. ``memo``: versions already materialised, reused, and every version on the way
    is added to it (unchecked: the caller checks each)."""
    known = {} if memo is None else memo
    chain: list[_Link] = []
    doc: ManifestDoc | None = None
    if memo is None:  # the whole lineage in one query
        chain = _chain(s, digest, text=True)
    else:  # row by row, down to a version already materialised
        at = digest
        while at not in known and len(chain) <= 4 * FULL_EVERY:
            row = s.get(VersionRow, at)
            if row is None:
                break
            chain.append(_Link(row.digest, row.base, row.depth, 0, row.manifest))
            if row.base is None:
                break
            at = row.base
        if at in known:
            doc = known[at]
    if not chain and doc is None:
        raise UnknownVersionError(f"no version {digest} in the catalog")
    if doc is None and chain[-1].base is not None:
        if len(chain) > 4 * FULL_EVERY:  # never follow a damaged catalog's loop
            raise CorruptCatalogError(
                f"version {digest[:12]}: its chain of deltas does not end: {RESTORE_CATALOG}"
            )
        raise CorruptCatalogError(
            f"version {digest[:12]} is stored as a change to version {chain[-1].base[:12]}, which the "
            f"catalog lacks: {RESTORE_CATALOG}"
        )
    try:
        for link in reversed(chain):
            stored = json.loads(link.text or "")
            doc = ManifestDoc.from_json(stored) if doc is None else doc.apply(stored)
            if memo is not None:
                memo[link.digest] = doc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorruptCatalogError(
            f"version {digest[:12]}: its stored manifest does not read "
            f"({type(exc).__name__}: {str(exc)[:100]}): {RESTORE_CATALOG}"
        ) from None
    assert doc is not None
    if check:
        whole = len(chain) == 1 and chain[0].base is None and chain[0].digest == digest
        # A manifest stored whole is its canonical text: hash that, without writing it out again.
        text = chain[0].text or "" if whole else doc.canonical_json()
        if sha256_text(text) != digest:
            raise _mismatch(digest)
    return doc


def _mismatch(digest: str) -> CorruptCatalogError:
    return CorruptCatalogError(
        f"version {digest[:12]}: its manifest does not hash to its digest: {RESTORE_CATALOG}"
    )


def stored(s: Session, digest: str) -> Stored:
    row = s.get(VersionRow, digest)
    if row is None:
        raise UnknownVersionError(f"no version {digest} in the catalog")
    return Stored(len(row.manifest.encode("utf-8")), row.depth, row.base is not None)


def every(s: Session) -> Iterator[tuple[str, ManifestDoc | None, CorruptCatalogError | None]]:
    """Every version, oldest first: (digest, its materialised manifest or None if it does not read,
    the error if it does not read or does not hash to its digest). Each delta is applied once."""
    memo: dict[str, ManifestDoc] = {}
    digests = list(s.scalars(select(VersionRow.digest).order_by(VersionRow.created_at, VersionRow.digest)))
    for digest in digests:
        try:
            doc = _materialise(s, digest, memo, check=False)
        except CorruptCatalogError as exc:
            yield digest, None, exc
            continue
        yield digest, doc, None if sha256_text(doc.canonical_json()) == digest else _mismatch(digest)
