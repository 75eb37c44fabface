"""Derived training labels stored as derivations: one blob per episode, one catalog row each.

Each blob (:mod:`takeover.annotation.derivation_catalog`) holds the episode's per-step arrays under
the names a training job reads them by — ``control_class`` uint8, ``value_target`` float32,
``value_estimate`` float32, ``advantage`` float32, ``improvement`` bool — and ``baseline`` (the
batch's baseline curve), with a record of the batch's figures (horizon, threshold, positive
fraction, value source) so a training job can say which indicator it used.

The labels of an episode depend on the whole batch (the horizon, the baseline and the threshold),
so its input digest names the episode file, its outcome label and the batch:
``sha256({"episode": <file digest>, "outcome": <label>, "batch": <batch digest>})`` with the batch
digest the sha256 of every ``[episode_id, file digest, outcome]`` of the batch, sorted by id.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from takeover.annotation.derivation_catalog import (
    DerivationRecord,
    decode_blob,
    encode_blob,
    find_record,
    read_blob,
    store_blob,
)
from takeover.annotation.training_labels import (
    OUTCOMES,
    EpisodeLabels,
    TrainingLabels,
    derive_training_labels,
    label_input,
)
from takeover.annotation.training_params import TrainingLabelParams
from takeover.storage.boundary_edits import BoundaryEdit
from takeover.storage.derived import TRAINING_LABELS
from takeover.storage.errors import StorageError
from takeover.storage.manifest import ManifestEntry, canonical_json, label_of
from takeover.storage.store import Store

DERIVATION_NAME = TRAINING_LABELS
ARRAY_DTYPES: dict[str, type[np.generic]] = {
    "control_class": np.uint8,
    "value_target": np.float32,
    "value_estimate": np.float32,
    "advantage": np.float32,
    "improvement": np.bool_,
}
"""The per-step arrays of a training-labels blob and their types."""


def _sha256(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class BatchInputs:
    """What a batch of training labels is computed from, and the input digest of each episode."""

    file_digests: dict[str, str]
    outcomes: dict[str, str]
    edits: dict[str, tuple[BoundaryEdit, ...]] = field(default_factory=dict)
    """The boundary edits that count, of the episodes that have any."""

    def _edits(self, i: str) -> list[list[Any]]:
        return [[e.kind, e.recorded_step, e.step, e.pre_window_start] for e in self.edits.get(i, ())]

    @property
    def digest(self) -> str:
        return _sha256(
            [
                [i, self.file_digests[i], self.outcomes[i], *([self._edits(i)] if self.edits.get(i) else [])]
                for i in sorted(self.file_digests)
            ]
        )

    def input_digests(self) -> dict[str, str]:
        batch = self.digest
        out = {}
        for i in sorted(self.file_digests):
            doc: dict[str, Any] = {
                "episode": self.file_digests[i],
                "outcome": self.outcomes[i],
                "batch": batch,
            }
            if self.edits.get(i):
                doc["boundaries"] = self._edits(i)
            out[i] = _sha256(doc)
        return out


def batch_inputs(store: Store, episode_ids: Sequence[str], labels: Mapping[str, str]) -> BatchInputs:
    """The inputs of a batch from the catalog (episode file digests) and ``labels`` (outcome by id)."""
    ids = list(dict.fromkeys(episode_ids))
    missing = [i for i in ids if i not in labels]
    if missing:
        raise ValueError(f"no outcome label given for episode(s) {', '.join(missing[:5])}")
    wrong = sorted({labels[i] for i in ids} - set(OUTCOMES))
    if wrong:
        raise ValueError(f"outcome labels must be one of {list(OUTCOMES)}, got {wrong}")
    edits = {i: tuple(e) for i, e in store.boundaries.current(ids).items()}
    return BatchInputs({i: store.get_episode(i).blob_digest for i in ids}, {i: labels[i] for i in ids}, edits)


def encode_labels(labels: TrainingLabels, episode: EpisodeLabels, inputs: BatchInputs) -> bytes:
    """Deterministic npz bytes of one episode's labels with the batch's figures."""
    record = {
        "name": DERIVATION_NAME,
        "version": labels.params.version,
        "episode_id": episode.episode_id,
        "params": labels.params.to_dict(),
        "input_digest": inputs.input_digests()[episode.episode_id],
        "episode_digest": inputs.file_digests[episode.episode_id],
        "outcome": episode.outcome,
        "batch_digest": inputs.digest,
        "batch_episodes": len(inputs.file_digests),
        "horizon_steps": labels.horizon_steps,
        "threshold": labels.threshold,
        "positive_fraction": labels.positive_fraction,
        "non_human_steps": labels.non_human_steps,
        "value_source": episode.value_source,
        "pre_window_steps": episode.pre_window_steps,
    }
    arrays = {k: np.asarray(v, dtype=ARRAY_DTYPES[k]) for k, v in episode.arrays().items()}
    arrays["baseline"] = np.asarray(labels.baseline, dtype=np.float64)
    return encode_blob(record, arrays)


def decode_labels(data: bytes) -> tuple[dict[str, Any], EpisodeLabels, np.ndarray]:
    """The record, the labels of one episode and the batch's baseline curve stored in a
    training-labels blob."""
    record, arrays = decode_blob(data, DERIVATION_NAME)
    for key, dtype in (*ARRAY_DTYPES.items(), ("baseline", np.float64)):
        if key not in arrays or arrays[key].dtype != dtype or arrays[key].ndim != 1:
            raise StorageError(f"training-labels blob of {record.get('episode_id')}: bad or missing {key}")
    episode = EpisodeLabels(
        episode_id=str(record["episode_id"]),
        outcome=str(record["outcome"]),
        control_class=arrays["control_class"],
        value_target=arrays["value_target"],
        value_estimate=arrays["value_estimate"],
        advantage=arrays["advantage"],
        improvement=arrays["improvement"],
        value_source=str(record["value_source"]),
        pre_window_steps=int(record["pre_window_steps"]),
    )
    return record, episode, arrays["baseline"]


def _records(
    store: Store, params: TrainingLabelParams, inputs: BatchInputs
) -> dict[str, DerivationRecord | None]:
    digest = params.digest()
    return {i: find_record(store, i, DERIVATION_NAME, digest, d) for i, d in inputs.input_digests().items()}


def load_training_labels(
    store: Store, episode_ids: Sequence[str], params: TrainingLabelParams, labels: Mapping[str, str]
) -> TrainingLabels | None:
    """The stored training labels of this batch with these parameters and outcome labels, or None
    if any episode's are not stored."""
    inputs = batch_inputs(store, episode_ids, labels)
    records = _records(store, params, inputs)
    if any(r is None for r in records.values()):
        return None
    decoded = [decode_labels(read_blob(store, r)) for r in records.values() if r is not None]
    batch, _, baseline = decoded[0]
    return TrainingLabels(
        params=params,
        episodes=tuple(episode for _, episode, _ in decoded),
        horizon_steps=int(batch["horizon_steps"]),
        baseline=baseline,
        threshold=float(batch["threshold"]),
        positive_fraction=float(batch["positive_fraction"]),
        non_human_steps=int(batch["non_human_steps"]),
    )


def derive_and_store(
    store: Store,
    episode_ids: Sequence[str],
    params: TrainingLabelParams,
    labels: Mapping[str, str],
    *,
    clock: Callable[[], float] = time.time,
) -> tuple[TrainingLabels, int]:
    """Derive the training labels of a batch and store each episode's; returns the labels and how
    many episodes' were newly stored (0 when the batch was derived before with the same
    parameters and labels: then nothing is computed)."""
    stored = load_training_labels(store, episode_ids, params, labels)
    if stored is not None:
        return stored, 0
    inputs = batch_inputs(store, episode_ids, labels)
    result = derive_training_labels(
        [
            label_input(store.read_episode(i), inputs.outcomes[i], params, inputs.edits.get(i, ()))
            for i in inputs.file_digests
        ],
        params,
    )
    created = 0
    digests = inputs.input_digests()
    for episode in result.episodes:
        data = encode_labels(result, episode, inputs)
        record = DerivationRecord(
            episode_id=episode.episode_id,
            name=DERIVATION_NAME,
            version=params.version,
            params_json=params.canonical_json(),
            params_digest=params.digest(),
            input_digest=digests[episode.episode_id],
            digest=hashlib.sha256(data).hexdigest(),
            created_at=float(clock()),
        )
        created += store_blob(store, record, data)[1]
    return result, created


class TrainingLabelPins:
    """The training labels a new version pins (a :data:`~takeover.storage.derived.DerivationPins`
    for :meth:`Store.commit` and :meth:`Store.pin_derived`): derives and stores the labels of the
    version's episodes as one batch, with the label the version gives each (computed once: a
    batch derived before is read back), and names each episode's blob. After the call,
    :attr:`result` holds the labels and :attr:`created` how many episodes' were newly stored."""

    def __init__(
        self, store: Store, params: TrainingLabelParams, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store, self.params, self.clock = store, params, clock
        self.result: TrainingLabels | None = None
        self.created = 0

    def __call__(self, entries: Sequence[ManifestEntry]) -> dict[str, dict[str, str]]:
        labels = {e.episode_id: label_of(e) for e in entries}
        inputs = batch_inputs(self.store, list(labels), labels)
        other = [e.episode_id for e in entries if inputs.file_digests[e.episode_id] != e.digest]
        if other:
            raise StorageError(
                f"the catalog holds other data for {', '.join(other[:3])} than the version: training "
                "labels are derived from the catalog's data, so they cannot be pinned for it"
            )
        try:
            self.result, self.created = derive_and_store(
                self.store, list(labels), self.params, labels, clock=self.clock
            )
        except ValueError as exc:  # inputs these parameters cannot label, e.g. beyond the horizon
            raise StorageError(f"cannot derive the version's training labels: {exc}") from None
        records = _records(self.store, self.params, inputs)
        return {i: {DERIVATION_NAME: r.digest} for i, r in records.items() if r is not None}
