"""Derived results a version pins, read without the code that derives them.

A derivation (:mod:`takeover.annotation`'s boundary smoothing and training labels) is kept in the
store's derived blobs as an uncompressed npz without pickle: ``record.json`` (UTF-8 JSON naming the
blob format, the derivation, its version, parameters and inputs) and one ``<key>.npy`` member, a
plain numeric or bool array, per key. A version pins a derivation of an episode by name and *blob
digest* (``ManifestEntry.derivations``, e.g. ``{"training_labels": "<sha256 of the blob>"}``): the
digest names the exact result, whatever batch, labels and parameters it was computed from (the
blob's record says which). A name and a parameter digest would not: the training labels of an
episode depend on the whole batch it was derived in.

A version's derivation pins hold for that version's episodes: a version made from a parent pins
only what :data:`DerivationPins` gives it (its batch may differ from the parent's), never the
parent's pins.

Storage reads the per-step arrays of pinned training labels by name (numpy,
``allow_pickle=False``) for `pull` and the exports: :data:`TRAINING_KEYS`, each checked to belong
to the entry that pins it (episode, file, label, length) and cut to the entry's step range.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from takeover.storage.blobs import BlobStore, is_digest
from takeover.storage.errors import BlobNotFoundError, CorruptBlobError, StorageError, VersionChangeError
from takeover.storage.manifest import ManifestEntry, label_of

BLOB_FORMAT = "takeover.derivation/1"
TRAINING_LABELS = "training_labels"
"""The name of the derived training labels (:mod:`takeover.annotation.training_store`)."""
TRAINING_KEYS: dict[str, type[np.generic]] = {
    "control_class": np.int64,
    "value_target": np.float32,
    "improvement": np.bool_,
}
"""The per-step keys of pinned training labels that `pull` offers and the exports write, with
the type they have there (stored: uint8, float32, bool)."""
STORED_KINDS = {"control_class": "u", "value_target": "f", "improvement": "b"}
"""The kind of array each key must be stored as (numpy dtype kinds)."""

DerivationPins = Callable[[Sequence[ManifestEntry]], Mapping[str, Mapping[str, str]]]
"""The entries of a new version (labels applied) -> for each episode id, derivation name -> the
digest of the derived blob the version pins (see :meth:`~takeover.storage.store.Store.commit`).
:mod:`takeover.annotation.training_store` makes them; storage only applies them."""

PIN_COMMAND = "takeover annotate derive-labels {tag} --commit NEW"


class DerivedError(StorageError):
    """A pinned derivation that cannot be read as the version says (one line)."""


def not_pinned(tag: str) -> str:
    """One line: version ``tag`` pins no training labels, and the command that makes one that does."""
    return (
        f"version {tag} pins no training labels: `{PIN_COMMAND.format(tag=tag)}` freezes a version "
        "of the same episodes that does (or commit with `--derived training_labels`)"
    )


def pinned(entries: Sequence[ManifestEntry], name: str, tag: str) -> list[str] | None:
    """The blob digest of derivation ``name`` each entry pins, in order; None if none pins it
    (:class:`DerivedError` if only some do)."""
    found = [dict(e.derivations).get(name) for e in entries]
    if all(d is None for d in found):
        return None
    missing = [e.episode_id for e, d in zip(entries, found, strict=True) if d is None]
    if missing:
        raise DerivedError(
            f"version {tag} pins {name} for {len(entries) - len(missing)} of its {len(entries)} episodes "
            f"(not for {', '.join(missing[:3])}): {PIN_COMMAND.format(tag=tag)} pins them for all"
        )
    return [d for d in found if d is not None]


def with_pins(tag: str, entries: Sequence[ManifestEntry], derived: DerivationPins) -> list[ManifestEntry]:
    """``entries`` of the new version ``tag``, each pinning the derived blobs ``derived`` gives it
    (and no other)."""
    pins = derived(entries)
    out = []
    for e in entries:
        given = pins.get(e.episode_id)
        if not given or not all(is_digest(d) for d in given.values()):
            raise VersionChangeError(
                f"cannot commit {tag!r}: no derived blob digest given for episode {e.episode_id}"
            )
        out.append(replace(e, derivations=tuple(sorted(given.items()))))
    return out


def read_blob(data: bytes, name: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The record and the arrays of a derivation blob of derivation ``name`` (no pickle: an
    array of objects is refused)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            record = json.loads(npz["record.json"].decode("utf-8"))
            arrays = {k: npz[k] for k in npz.files if k != "record.json"}
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
        raise DerivedError(f"not a readable derivation blob: {str(exc)[:120]}") from None
    if not isinstance(record, dict):
        raise DerivedError("not a derivation blob: its record.json is no JSON object")
    if record.get("format") != BLOB_FORMAT:
        raise DerivedError(f"unsupported derivation blob format {record.get('format')!r}")
    if record.get("name") != name:
        raise DerivedError(f"a derivation blob of {record.get('name')!r}, not of {name!r}")
    return record, arrays


def fetch(blobs: BlobStore, digest: str, episode_id: str) -> bytes:
    """The bytes of a derived blob from ``blobs``, checked against its digest."""
    try:
        data = blobs.get_bytes(digest)
    except BlobNotFoundError:
        raise BlobNotFoundError(
            f"derived blob {digest[:12]} of episode {episode_id} is missing from {blobs.url}"
        ) from None
    if hashlib.sha256(data).hexdigest() != digest:
        raise CorruptBlobError(f"derived blob {digest[:12]} of episode {episode_id} is corrupt")
    return data


def training_steps(data: bytes, entry: ManifestEntry) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The record of the training labels ``entry`` pins (bytes ``data``) and the arrays of
    :data:`TRAINING_KEYS` over the entry's step range, in their types; :class:`DerivedError` if the
    blob is not the labels of this episode, file and label."""
    record, arrays = read_blob(data, TRAINING_LABELS)
    where = f"the training labels pinned for episode {entry.episode_id}"
    for field, want in (
        ("episode_id", entry.episode_id),
        ("episode_digest", entry.digest),
        ("outcome", label_of(entry)),
    ):
        if record.get(field) != want:
            raise DerivedError(f"{where} were derived for {field} {record.get(field)!r}, not {want!r}")
    out: dict[str, np.ndarray] = {}
    for key, dtype in TRAINING_KEYS.items():
        values = arrays.get(key)
        if values is None or values.ndim != 1 or values.dtype.kind != STORED_KINDS[key]:
            raise DerivedError(f"{where}: no one-dimensional {key} array of the expected type")
        if values.shape[0] != entry.num_steps:
            raise DerivedError(f"{where}: {key} has {values.shape[0]} steps, the episode {entry.num_steps}")
        out[key] = values[entry.start : entry.stop].astype(dtype)
    return record, out


@dataclass(frozen=True)
class TrainingColumns:
    """The training labels a version pins, as the exports write them."""

    steps: tuple[dict[str, np.ndarray], ...]
    """Per entry, :data:`TRAINING_KEYS` over its step range."""
    figures: dict[str, Any]
    """What a training job records to name the labels it used: the parameters and the batch's
    figures (threshold, positive fraction, horizon, batch digest and size)."""


FIGURES = ("params", "batch_digest", "batch_episodes", "horizon_steps", "threshold", "positive_fraction")


def training_columns(blobs: BlobStore, entries: Sequence[ManifestEntry], tag: str) -> TrainingColumns | None:
    """The training labels ``entries`` (of version ``tag``) pin, read from the store's derived
    ``blobs`` and verified; None if they pin none."""
    digests = pinned(entries, TRAINING_LABELS, tag)
    if digests is None:
        return None
    read = [training_steps(fetch(blobs, d, e.episode_id), e) for d, e in zip(digests, entries, strict=True)]
    record = read[0][0]
    return TrainingColumns(
        tuple(arrays for _, arrays in read), {k: record[k] for k in FIGURES if k in record}
    )
