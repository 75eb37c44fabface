"""Smoothing results stored next to their episode (see :mod:`takeover.annotation.derivation_catalog`
for the blob and the catalog row; the input digest is the digest of the episode file)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from takeover.annotation.derivation_catalog import (
    DerivationRecord,
    decode_blob,
    encode_blob,
    find_record,
    list_derivations,
    read_blob,
    store_blob,
)
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
from takeover.storage.store import Store

__all__ = [
    "DerivationRecord",
    "decode_smoothed",
    "encode_smoothed",
    "find_derivation",
    "list_derivations",
    "load_smoothed",
    "read_derivation",
    "smooth_and_store",
    "store_smoothed",
]


def encode_smoothed(sm: SmoothedEpisode, input_digest: str) -> bytes:
    """Deterministic npz bytes of ``sm`` with its derivation record."""
    record = {
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
    return encode_blob(record, arrays)


def decode_smoothed(data: bytes) -> tuple[dict[str, Any], SmoothedEpisode]:
    """The record and the smoothed view stored in a derivation blob."""
    record, arrays = decode_blob(data, DERIVATION_NAME)
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
def find_derivation(
    store: Store, episode_id: str, params: SmoothingParams, input_digest: str | None = None
) -> DerivationRecord | None:
    """The stored smoothing of ``episode_id`` with ``params`` (of its current file), if any."""
    digest = input_digest or store.get_episode(episode_id).blob_digest
    return find_record(store, episode_id, DERIVATION_NAME, params.digest(), digest)


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
    data = encode_smoothed(sm, input_digest)
    record = DerivationRecord(
        episode_id=sm.episode_id,
        name=DERIVATION_NAME,
        version=DERIVATION_VERSION,
        params_json=sm.params.canonical_json(),
        params_digest=sm.params.digest(),
        input_digest=input_digest,
        digest=hashlib.sha256(data).hexdigest(),
        created_at=float(clock()),
    )
    return store_blob(store, record, data)


def read_derivation(store: Store, record: DerivationRecord) -> SmoothedEpisode:
    _, sm = decode_smoothed(read_blob(store, record))
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
