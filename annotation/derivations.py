"""Smoothing results stored next to their episode: an immutable blob plus a catalog row.

The blob is an uncompressed npz (no pickle: every member is a plain numeric array, and the record is
UTF-8 JSON) written with fixed zip metadata, so the same derivation always has the same bytes and
the same sha256. Blobs live in the store's ``derived_blobs`` (``<store>/derived/blobs/sha256/..``
for a local store), apart from episode blobs (whose consistency check would count them as orphans).

The catalog table ``derivations`` (made by the store's migrations)::

    episode_id, name, params_digest, input_digest   primary key
    version, params_json, digest, created_at

``input_digest`` is the digest of the episode file the derivation was computed from, so a row can
never describe other bytes than the ones it names.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError

from takeover.annotation.params import SmoothingParams
from takeover.annotation.smoothed import (
    DERIVATION_NAME,
    DERIVATION_VERSION,
    BoundaryChange,
    CameraSelection,
    DroppedFrame,
    SmoothedEpisode,
    events_from_json,
    events_to_json,
    frozen,
)
from takeover.annotation.smoothing import smooth_episode
from takeover.storage.errors import BlobNotFoundError, CorruptBlobError, StorageError
from takeover.storage.store import Store
from takeover.storage.tables import DerivationRow

BLOB_FORMAT = "takeover.derivation/1"
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


def encode_smoothed(sm: SmoothedEpisode, input_digest: str) -> bytes:
    """Deterministic npz bytes of ``sm`` with its derivation record."""
    record = {
        "format": BLOB_FORMAT,
        "name": DERIVATION_NAME,
        "version": DERIVATION_VERSION,
        "episode_id": sm.episode_id,
        "params": sm.params.to_dict(),
        "input_digest": input_digest,
        "num_raw_steps": sm.num_raw_steps,
        "prior_time_shift_s": sm.prior_time_shift_s,
        "cameras": sorted(sm.cameras),
        "events": events_to_json(sm.events),
        "changes": [c.to_json() for c in sm.changes],
        "dropped_frames": [
            {"camera": d.camera, "index": d.index, "step": d.step, "reason": d.reason}
            for d in sm.dropped_frames
        ],
    }
    arrays: dict[str, np.ndarray] = {
        "keep": sm.keep,
        "timestamps": sm.timestamps,
        "action": sm.action,
        "time_shift": sm.time_shift,
    }
    for i, name in enumerate(sorted(sm.cameras)):
        sel = sm.cameras[name]
        arrays[f"camera{i}_index"] = sel.index
        arrays[f"camera{i}_timestamps"] = sel.timestamps
        arrays[f"camera{i}_step_index"] = sel.step_index
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        _write_member(zf, "record.json", json.dumps(record, sort_keys=True, allow_nan=True).encode("utf-8"))
        for key in sorted(arrays):
            _write_member(zf, f"{key}.npy", _npy(arrays[key]))
    return buf.getvalue()


def decode_smoothed(data: bytes) -> tuple[dict[str, Any], SmoothedEpisode]:
    """The record and the smoothed view stored in a derivation blob."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            record: dict[str, Any] = json.loads(zf.read("record.json").decode("utf-8"))
            arrays = {
                n[: -len(".npy")]: np.lib.format.read_array(io.BytesIO(zf.read(n)), allow_pickle=False)
                for n in zf.namelist()
                if n.endswith(".npy")
            }
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise StorageError(f"not a readable derivation blob: {exc}") from None
    if record.get("format") != BLOB_FORMAT:
        raise StorageError(f"unsupported derivation blob format {record.get('format')!r}")
    cams = {
        name: CameraSelection(
            index=frozen(arrays[f"camera{i}_index"]),
            timestamps=frozen(arrays[f"camera{i}_timestamps"]),
            step_index=frozen(arrays[f"camera{i}_step_index"]),
        )
        for i, name in enumerate(record["cameras"])
    }
    sm = SmoothedEpisode(
        episode_id=str(record["episode_id"]),
        params=SmoothingParams.from_dict(record["params"]),
        num_raw_steps=int(record["num_raw_steps"]),
        keep=frozen(arrays["keep"]),
        timestamps=frozen(arrays["timestamps"]),
        action=frozen(arrays["action"]),
        time_shift=frozen(arrays["time_shift"]),
        cameras=cams,
        events=events_from_json(record["events"]),
        changes=tuple(BoundaryChange.from_json(c) for c in record["changes"]),
        dropped_frames=tuple(DroppedFrame(**d) for d in record["dropped_frames"]),
        prior_time_shift_s=float(record["prior_time_shift_s"]),
    )
    return record, sm


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


def find_derivation(
    store: Store, episode_id: str, params: SmoothingParams, input_digest: str | None = None
) -> DerivationRecord | None:
    """The stored smoothing of ``episode_id`` with ``params`` (of its current file), if any."""
    digest = input_digest or store.get_episode(episode_id).blob_digest
    t = derivations_table
    query = select(t).where(
        t.c.episode_id == episode_id,
        t.c.name == DERIVATION_NAME,
        t.c.params_digest == params.digest(),
        t.c.input_digest == digest,
    )
    with store.catalog.engine.connect() as conn:
        row = conn.execute(query).first()
    return _record(row) if row is not None else None


def list_derivations(store: Store, episode_id: str | None = None) -> list[DerivationRecord]:
    t = derivations_table
    query = select(t).order_by(t.c.episode_id, t.c.name, t.c.created_at, t.c.params_digest)
    if episode_id is not None:
        query = query.where(t.c.episode_id == episode_id)
    with store.catalog.engine.connect() as conn:
        return [_record(r) for r in conn.execute(query)]


def store_smoothed(
    store: Store, sm: SmoothedEpisode, *, clock: Callable[[], float] = time.time
) -> tuple[DerivationRecord, bool]:
    """Store ``sm`` (computed from the episode's current file); returns (record, newly stored).

    Storing the same derivation again is a no-op that returns the existing record.
    """
    input_digest = store.get_episode(sm.episode_id).blob_digest
    existing = find_derivation(store, sm.episode_id, sm.params, input_digest)
    if existing is not None:
        return existing, False
    digest = store.derived_blobs.put_bytes(encode_smoothed(sm, input_digest))
    record = DerivationRecord(
        episode_id=sm.episode_id,
        name=DERIVATION_NAME,
        version=DERIVATION_VERSION,
        params_json=sm.params.canonical_json(),
        params_digest=sm.params.digest(),
        input_digest=input_digest,
        digest=digest,
        created_at=float(clock()),
    )
    try:
        with store.catalog.engine.begin() as conn:
            conn.execute(derivations_table.insert().values(**asdict(record)))
    except IntegrityError:  # stored concurrently by someone else: same inputs, same result
        again = find_derivation(store, sm.episode_id, sm.params, input_digest)
        if again is None:
            raise
        return again, False
    return record, True


def read_derivation(store: Store, record: DerivationRecord) -> SmoothedEpisode:
    try:
        data = store.derived_blobs.get_bytes(record.digest)
    except BlobNotFoundError:
        raise BlobNotFoundError(
            f"derivation blob {record.digest} of episode {record.episode_id} is missing from {store.where}"
        ) from None
    if hashlib.sha256(data).hexdigest() != record.digest:
        raise CorruptBlobError(f"derivation blob {record.digest} of episode {record.episode_id} is corrupt")
    _, sm = decode_smoothed(data)
    return sm


def load_smoothed(
    store: Store, episode_id: str, params: SmoothingParams | None = None
) -> SmoothedEpisode | None:
    """The stored smoothing of ``episode_id`` with ``params`` (default parameters if None), or
    None if it was never derived for the episode's current file."""
    record = find_derivation(store, episode_id, params if params is not None else SmoothingParams())
    return read_derivation(store, record) if record is not None else None


def smooth_and_store(
    store: Store, episode_id: str, params: SmoothingParams, *, clock: Callable[[], float] = time.time
) -> tuple[DerivationRecord, bool, SmoothedEpisode]:
    """Derive and store the smoothing of one episode unless it is stored already."""
    existing = find_derivation(store, episode_id, params)
    if existing is not None:
        return existing, False, read_derivation(store, existing)
    sm = smooth_episode(store.read_episode(episode_id), params)
    record, created = store_smoothed(store, sm, clock=clock)
    return record, created, sm
