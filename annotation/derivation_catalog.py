"""Derived results stored next to their episode: an immutable blob plus a catalog row.

Every derivation (boundary smoothing, training labels) is kept the same way. The blob is an
uncompressed npz (no pickle: every member ``<key>.npy`` is a plain numeric or bool array, and
``record.json`` is UTF-8 JSON with the format, the derivation's name and version, its parameters
and its input digest) written with fixed zip metadata, so the same derivation always has the same
bytes and the same sha256. Storage can read the arrays by name without this package. Blobs live
in the store's ``derived_blobs`` (``<store>/derived/blobs/sha256/..`` for a local store), apart
from episode blobs (whose consistency check would count them as orphans).

The catalog table ``derivations`` (made by the store's migrations)::

    episode_id, name, params_digest, input_digest   primary key
    version, params_json, digest, created_at

``input_digest`` names everything the derivation was computed from: the digest of the episode
file for smoothing; for training labels, a digest of the episode file, its outcome label and the
batch (see :mod:`takeover.annotation.training_store`). A row can never describe other inputs than
the ones it names.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError

from takeover.storage.derived import BLOB_FORMAT
from takeover.storage.derived import read_blob as read_derived
from takeover.storage.errors import BlobNotFoundError, CorruptBlobError
from takeover.storage.store import Store
from takeover.storage.tables import DerivationRow

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

derivations_table: Table = DerivationRow.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class DerivationRecord:
    episode_id: str
    name: str
    version: int
    params_json: str
    params_digest: str
    input_digest: str
    digest: str
    """sha256 of the derivation blob."""
    created_at: float


# -- blob encoding -------------------------------------------------------------------------------
def _write_member(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.external_attr = 0o644 << 16
    zf.writestr(info, data, compress_type=zipfile.ZIP_STORED)


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def encode_blob(record: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    """Deterministic npz bytes: ``record.json`` (``record`` with the blob format added), then every
    array as ``<key>.npy`` in key order."""
    buf = io.BytesIO()
    body = json.dumps({**record, "format": BLOB_FORMAT}, sort_keys=True, allow_nan=True).encode("utf-8")
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        _write_member(zf, "record.json", body)
        for key in sorted(arrays):
            _write_member(zf, f"{key}.npy", _npy(arrays[key]))
    return buf.getvalue()


def decode_blob(data: bytes, name: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The record and the arrays of a derivation blob of derivation ``name`` (read the way storage
    reads pinned derivations: :func:`takeover.storage.derived.read_blob`)."""
    return read_derived(data, name)


# -- catalog ---------------------------------------------------------------------------------------
def _record(row: Any) -> DerivationRecord:
    return DerivationRecord(
        episode_id=row.episode_id,
        name=row.name,
        version=int(row.version),
        params_json=row.params_json,
        params_digest=row.params_digest,
        input_digest=row.input_digest,
        digest=row.digest,
        created_at=float(row.created_at),
    )


def find_record(
    store: Store, episode_id: str, name: str, params_digest: str, input_digest: str
) -> DerivationRecord | None:
    """The stored derivation ``name`` of ``episode_id`` with these parameters and inputs, if any."""
    t = derivations_table
    query = select(t).where(
        t.c.episode_id == episode_id,
        t.c.name == name,
        t.c.params_digest == params_digest,
        t.c.input_digest == input_digest,
    )
    with store.catalog.engine.connect() as conn:
        row = conn.execute(query).first()
    return _record(row) if row is not None else None


def list_derivations(
    store: Store, episode_id: str | None = None, name: str | None = None
) -> list[DerivationRecord]:
    """Stored derivations (of one episode, of one name), by episode, name and time of creation."""
    t = derivations_table
    query = select(t).order_by(t.c.episode_id, t.c.name, t.c.created_at, t.c.params_digest)
    if episode_id is not None:
        query = query.where(t.c.episode_id == episode_id)
    if name is not None:
        query = query.where(t.c.name == name)
    with store.catalog.engine.connect() as conn:
        return [_record(r) for r in conn.execute(query)]


def store_blob(store: Store, record: DerivationRecord, data: bytes) -> tuple[DerivationRecord, bool]:
    """Put ``data`` (whose sha256 ``record.digest`` names) in the derived blobs and catalog the
    row; returns (record, newly stored). A row stored already, or concurrently by someone else
    (same inputs, same result), is returned as it is."""
    key = (record.episode_id, record.name, record.params_digest, record.input_digest)
    existing = find_record(store, *key)
    if existing is not None:
        return existing, False
    digest = store.derived_blobs.put_bytes(data)
    if digest != record.digest:
        raise ValueError(f"the record names blob {record.digest[:12]}, the bytes are {digest[:12]}")
    try:
        with store.catalog.engine.begin() as conn:
            conn.execute(derivations_table.insert().values(**asdict(record)))
    except IntegrityError:
        again = find_record(store, *key)
        if again is None:
            raise
        return again, False
    return record, True


def read_blob(store: Store, record: DerivationRecord) -> bytes:
    """The bytes of a stored derivation, checked against its digest."""
    try:
        data = store.derived_blobs.get_bytes(record.digest)
    except BlobNotFoundError:
        raise BlobNotFoundError(
            f"derivation blob {record.digest} of episode {record.episode_id} is missing from {store.where}"
        ) from None
    if hashlib.sha256(data).hexdigest() != record.digest:
        raise CorruptBlobError(f"derivation blob {record.digest} of episode {record.episode_id} is corrupt")
    return data
