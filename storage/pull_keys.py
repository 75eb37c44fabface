"""The keys of a pulled version's items: which exist, windows of them, and the derived keys.

Besides the episode files' streams and images, a version that pins training labels
(:mod:`takeover.storage.derived`) offers their per-step arrays as keys (:data:`TRAINING_KEYS`:
``control_class``, ``value_target``, ``improvement``). Their blobs are fetched into the pull cache
and hashed like every other blob (:func:`~takeover.storage.cache.fetch_verified`; small, so a
streaming pull fetches them up front too), read with numpy without pickle, checked to belong to
the entries that pin them, and held in memory over the version's step ranges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from takeover.storage.blobs import BlobStore, LocalBlobStore
from takeover.storage.cache import FetchStats, Verify, fetch_verified
from takeover.storage.derived import TRAINING_KEYS, TRAINING_LABELS, not_pinned, pinned, training_steps
from takeover.storage.errors import StorageError
from takeover.storage.manifest import ManifestEntry

Deltas = Mapping[str, Sequence[int]]
"""Key -> step offsets of a window, e.g. ``{"state": [-1, 0], "action": list(range(16))}``."""

IMAGE_PREFIX = "images."
STEP_ARRAYS: dict[str, tuple[str, type[np.generic]]] = {
    "state": ("state", np.float32),
    "action": ("action", np.float32),
    "proposed_action": ("proposed_action", np.float32),
    "control_source": ("control_source", np.int64),
    "timestamp": ("timestamps", np.float64),
}
"""Item keys read from a stream of one value per step (these, derived keys and images take
windows): key -> (array in the episode file, item dtype)."""
ITEM_KEYS = (*STEP_ARRAYS, "episode_index", "step_index", "success", "label")
"""The keys every item can have besides ``images.<camera>`` and the derived keys."""


LABEL_CODES = {"failure": 0, "near_success": 1, "success": 2}
"""The ``label`` item key: the episode's outcome label as a number, most cautious first."""


class KeyChoiceError(StorageError, ValueError):
    """``keys`` or ``deltas`` that name no key of the version, or windows that cannot be made."""


def window(step: int, offsets: np.ndarray, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """The steps ``step + offsets`` held to ``[start, stop)`` (the edge step repeated), and which
    of them were moved (the padding mask)."""
    wanted = step + offsets
    steps = np.clip(wanted, start, stop - 1)
    return steps, steps != wanted


def derived_wanted(tag: str, entries: Sequence[ManifestEntry], keys: Sequence[str] | None) -> list[str]:
    """The derived keys items have: those ``keys`` asks for (every one the version offers without
    ``keys``); :class:`KeyChoiceError` naming the command that pins them if the version pins none."""
    asked = list(TRAINING_KEYS) if keys is None else [k for k in TRAINING_KEYS if k in keys]
    if not asked:
        return []
    if pinned(entries, TRAINING_LABELS, tag) is None:
        if keys is None:
            return []
        raise KeyChoiceError(f"no key {', '.join(asked)}: {not_pinned(tag)}")
    return asked


def check_choice(
    cameras: Sequence[str], keys: Sequence[str] | None, deltas: Deltas | None, derived: Sequence[str] = ()
) -> tuple[frozenset[str] | None, dict[str, np.ndarray]]:
    """The keys chosen (None: all) and the window offsets per key, or :class:`KeyChoiceError`
    (``derived``: the derived keys the version offers)."""
    images = [IMAGE_PREFIX + c for c in cameras]
    known = [*ITEM_KEYS, *derived, *images]
    chosen = None if keys is None else frozenset(keys)
    unknown = sorted((chosen or frozenset()) - set(known))
    if unknown:
        raise KeyChoiceError(f"no key {', '.join(unknown)} in this version: its keys are {', '.join(known)}")
    windows: dict[str, np.ndarray] = {}
    windowed = [*STEP_ARRAYS, *derived, *images]
    for key, offsets in (deltas or {}).items():
        if key not in windowed:
            raise KeyChoiceError(f"no window for key {key!r}: windows are taken of {', '.join(windowed)}")
        if chosen is not None and key not in chosen:
            raise KeyChoiceError(f"a window for key {key!r}, which keys= does not ask for")
        arr = np.asarray(list(offsets))
        if arr.ndim != 1 or arr.size == 0 or arr.dtype.kind not in "iu":
            raise KeyChoiceError(f"the window of {key!r} is a non-empty list of whole step offsets")
        windows[key] = arr.astype(np.int64)
    return chosen, windows


class DerivedSteps:
    """The derived keys of a version's items: per key and episode, the values over the episode's
    step range (index ``step - start``)."""

    def __init__(self, keys: Sequence[str], values: Sequence[Mapping[str, np.ndarray]]) -> None:
        self.keys = list(keys)
        self._values = [{k: v[k] for k in self.keys} for v in values]

    def at(self, key: str, ep: int, start: int, steps: np.ndarray | int) -> np.ndarray:
        """The values of ``key`` at ``steps`` (steps of the episode, within its range) of episode ``ep``."""
        return np.array(self._values[ep][key][np.asarray(steps) - start])

    @classmethod
    def fetch(
        cls,
        tag: str,
        entries: Sequence[ManifestEntry],
        keys: Sequence[str],
        source: BlobStore,
        cache: LocalBlobStore,
        verify: Verify,
        stats: FetchStats,
    ) -> DerivedSteps:
        """Fetch the training-label blobs the entries pin from ``source`` (the store's derived
        blobs) into ``cache``, verified, and read ``keys`` of each."""
        digests = pinned(entries, TRAINING_LABELS, tag) or []
        files = fetch_verified(source, cache, digests, verify, stats=stats, what="training labels")
        return cls(keys, [training_steps(f.read_bytes(), e)[1] for f, e in zip(files, entries, strict=True)])
