"""A version made from a parent plus changes: episodes added, removed, and trimmed to a step range.

Works on the parent's materialised manifest (:class:`~takeover.storage.manifest_store.ManifestDoc`),
touching only the entries that change, so its cost follows the change, not the parent. Trimming
pins a step range in the entry (:attr:`ManifestEntry.steps`); no raw data is rewritten. Episodes
the parent holds that have been deleted since are left out of the child (and counted in its
``created_from``). The parent's derivation pins are not kept (:mod:`takeover.storage.derived`).
Every mistake is one :class:`~takeover.storage.errors.VersionChangeError` line.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

from takeover.storage.catalog import EpisodeRecord
from takeover.storage.errors import EmptySelectionError, VersionChangeError
from takeover.storage.manifest import ManifestEntry
from takeover.storage.manifest_store import ManifestDoc
from takeover.storage.schema import SCHEMA_VERSION


def _listed(ids: Collection[str], shown: int = 5) -> str:
    ordered = sorted(ids)
    more = f" and {len(ordered) - shown} more" if len(ordered) > shown else ""
    return ", ".join(ordered[:shown]) + more


def parse_trim(text: str) -> tuple[str, tuple[int, int]]:
    """``ID:START:STOP`` -> (id, (start, stop)); the id may itself hold colons."""
    parts = text.rsplit(":", 2)
    try:
        if len(parts) != 3 or not parts[0]:
            raise ValueError
        return parts[0], (int(parts[1]), int(parts[2]))
    except ValueError:
        raise VersionChangeError(
            f"--trim takes ID:START:STOP (steps START to STOP-1), got {text!r}"
        ) from None


def entry_of(record: EpisodeRecord) -> ManifestEntry:
    return ManifestEntry(
        record.episode_id, record.blob_digest, record.num_steps, record.success, record.outcome
    )


def derive(
    parent: ManifestDoc,
    parent_digest: str,
    parent_name: str,
    added: Sequence[ManifestEntry],
    remove: Collection[str],
    trim: Mapping[str, tuple[int, int]],
    deleted: Collection[str],
) -> ManifestDoc:
    """The child of ``parent`` (version ``parent_digest``, named ``parent_name`` in messages):
    ``added`` entries (of cataloged episodes), ids to ``remove``, step ranges to ``trim`` to, and the
    ids of deleted episodes to leave out."""
    add_ids = {r.episode_id for r in added}
    both = add_ids & set(remove)
    if both:
        raise VersionChangeError(f"{_listed(both)}: both added and removed")
    held = add_ids & parent.entries.keys()
    if held:
        raise VersionChangeError(f"cannot add {_listed(held)}: version {parent_name} holds it already")
    gone = add_ids & set(deleted)
    if gone:
        raise VersionChangeError(
            f"cannot add {_listed(gone)}: deleted (`takeover data undelete ID` takes a deletion back)"
        )
    absent = set(remove) - parent.entries.keys()
    if absent:
        raise VersionChangeError(f"cannot remove {_listed(absent)}: version {parent_name} does not hold it")
    # The parent's derivation pins hold for the parent's episodes: a child pins its own.
    entries = {i: e if "derivations" not in e else _unpinned(e) for i, e in parent.entries.items()}
    for episode_id in remove:
        del entries[episode_id]
    left_out = sorted(entries.keys() & set(deleted))
    for episode_id in left_out:
        del entries[episode_id]
    for entry in added:
        entries[entry.episode_id] = entry.to_json()
    for episode_id, steps in sorted(trim.items()):
        entries[episode_id] = _trimmed(entries, episode_id, steps, parent_name, remove).to_json()
    if not entries:
        raise EmptySelectionError(
            f"nothing to commit: the version would hold no episodes ({len(left_out)} deleted)"
        )
    created_from: dict[str, Any] = {
        "selection": "parent",
        "added": len(added),
        "removed": len(remove),
        "trimmed": len(trim),
    }
    if left_out:
        created_from["left_out"] = {"deleted": len(left_out)}
    top = {
        **parent.top,
        "created_from": created_from,
        "episode_schema_version": SCHEMA_VERSION,
        "parent": parent_digest,
    }
    return ManifestDoc(top, entries)


def _unpinned(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "derivations"}


def _trimmed(
    entries: Mapping[str, dict[str, Any]],
    episode_id: str,
    steps: tuple[int, int],
    parent_name: str,
    removed: Collection[str],
) -> ManifestEntry:
    if episode_id not in entries:
        why = (
            "it is removed" if episode_id in removed else f"it is neither in version {parent_name} nor added"
        )
        raise VersionChangeError(f"cannot trim {episode_id}: {why}")
    entry = ManifestEntry.from_json(entries[episode_id])
    start, stop = steps
    if not 0 <= start < stop <= entry.num_steps:
        raise VersionChangeError(
            f"cannot trim {episode_id} to {start}:{stop}: it has {entry.num_steps} steps "
            f"(START:STOP with 0 <= START < STOP <= {entry.num_steps})"
        )
    return replace(entry, steps=None if (start, stop) == (0, entry.num_steps) else (start, stop))
