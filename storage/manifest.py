"""Version manifests: the frozen content of a dataset version, and its canonical hash.

A version is identified by the sha256 of its manifest's canonical JSON (sorted keys, no
whitespace, UTF-8, no NaN), so equal manifests always have equal digests. The manifest holds no
clock readings; when and why a version was made live beside it in the catalog.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from takeover.storage.schema import SCHEMA_VERSION

MANIFEST_FORMAT = "takeover.manifest/1"
LABELS = ("success", "near_success", "failure")


@dataclass(frozen=True)
class ManifestEntry:
    episode_id: str
    digest: str
    """sha256 of the episode's HDF5 file."""
    num_steps: int
    success: bool | None
    outcome: str
    steps: tuple[int, int] | None = None
    """The step range ``[start, stop)`` the version takes of the episode (trimming without
    rewriting the raw data); None for every step."""
    labels: str = ""
    """The label revision the version reads the episode's labels at ('' for the operator's verdict
    in the episode record, ``outcome``/``success`` above)."""
    derivations: tuple[tuple[str, str], ...] = ()
    """Derived results the version pins, as (name, derived blob digest) pairs sorted by name (see
    :mod:`takeover.storage.derived`)."""
    videos: tuple[tuple[str, str], ...] = ()
    """Camera streams the version reads from a transcoded video blob instead of the recorded
    JPEG frames, as (camera, video blob digest) pairs sorted by camera."""

    def __post_init__(self) -> None:
        if self.steps is not None:
            start, stop = self.steps
            if not 0 <= start < stop <= self.num_steps:
                raise ValueError(
                    f"episode {self.episode_id}: step range [{start}, {stop}) is not within its "
                    f"{self.num_steps} steps"
                )
        for pairs, what in ((self.derivations, "derivation"), (self.videos, "video")):
            names = [k for k, _ in pairs]
            if names != sorted(set(names)):
                raise ValueError(f"episode {self.episode_id}: {what} pins are sorted and unique by name")

    @property
    def start(self) -> int:
        return 0 if self.steps is None else self.steps[0]

    @property
    def stop(self) -> int:
        return self.num_steps if self.steps is None else self.steps[1]

    @property
    def length(self) -> int:
        """The number of steps the version takes of the episode."""
        return self.stop - self.start

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "episode_id": self.episode_id,
            "digest": self.digest,
            "num_steps": self.num_steps,
            "success": self.success,
            "outcome": self.outcome,
        }
        # Optional pins are written only when set, so entries without them keep their digests.
        if self.steps is not None:
            out["steps"] = [self.steps[0], self.steps[1]]
        if self.labels:
            out["labels"] = self.labels
        if self.derivations:
            out["derivations"] = dict(self.derivations)
        if self.videos:
            out["videos"] = dict(self.videos)
        return out

    @classmethod
    def from_json(cls, e: dict[str, Any]) -> ManifestEntry:
        steps = e.get("steps")
        return cls(
            episode_id=str(e["episode_id"]),
            digest=str(e["digest"]),
            num_steps=int(e["num_steps"]),
            success=None if e["success"] is None else bool(e["success"]),
            outcome=str(e["outcome"]),
            steps=None if steps is None else (int(steps[0]), int(steps[1])),
            labels=str(e.get("labels", "")),
            derivations=tuple(sorted((str(k), str(v)) for k, v in e.get("derivations", {}).items())),
            videos=tuple(sorted((str(k), str(v)) for k, v in e.get("videos", {}).items())),
        )

    @classmethod
    def from_checked_json(cls, e: dict[str, Any]) -> ManifestEntry:
        """The entry of a manifest that was checked against its version digest: every entry was
        validated by :meth:`from_json` or the constructor when its version was made, so it is
        built here without validating again (a version of ten thousand episodes reads in
        milliseconds, not a tenth of a second)."""
        entry = object.__new__(cls)
        steps = e.get("steps")
        entry.__dict__.update(
            episode_id=e["episode_id"],
            digest=e["digest"],
            num_steps=e["num_steps"],
            success=e["success"],
            outcome=e["outcome"],
            steps=None if steps is None else (steps[0], steps[1]),
            labels=e.get("labels", ""),
            derivations=tuple(sorted(e["derivations"].items())) if "derivations" in e else (),
            videos=tuple(sorted(e["videos"].items())) if "videos" in e else (),
        )
        return entry


@dataclass(frozen=True)
class Manifest:
    episodes: tuple[ManifestEntry, ...]
    """Sorted by episode id."""
    created_from: dict[str, Any] = field(default_factory=dict)
    """How the selection was made (for people; it is part of the hash)."""
    episode_schema_version: int = SCHEMA_VERSION
    parent: str = ""
    """The digest of the version this one was made from ('' for none). Part of the hash, and
    written only when set, so versions without a parent keep the digests they always had."""

    @classmethod
    def build(cls, entries: list[ManifestEntry], created_from: dict[str, Any], parent: str = "") -> Manifest:
        ordered = tuple(sorted(entries, key=lambda e: e.episode_id))
        ids = [e.episode_id for e in ordered]
        if len(set(ids)) != len(ids):
            raise ValueError("a manifest lists each episode once")
        if parent and not (len(parent) == 64 and all(c in "0123456789abcdef" for c in parent)):
            raise ValueError(f"a parent is a version digest (64 hex digits), got {parent!r}")
        return cls(episodes=ordered, created_from=dict(created_from), parent=parent)

    @property
    def num_steps(self) -> int:
        """The number of steps the version holds (step ranges applied)."""
        return sum(e.length for e in self.episodes)

    def to_json(self) -> dict[str, Any]:
        out = {
            "format": MANIFEST_FORMAT,
            "episode_schema_version": self.episode_schema_version,
            "created_from": self.created_from,
            "episodes": [e.to_json() for e in self.episodes],
        }
        if self.parent:
            out["parent"] = self.parent
        return out

    def canonical_json(self) -> str:
        return canonical_json(self.to_json())

    def digest(self) -> str:
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    @classmethod
    def from_json_text(cls, text: str) -> Manifest:
        return cls.from_json(json.loads(text))

    @classmethod
    def from_json(cls, obj: dict[str, Any], *, checked: bool = False) -> Manifest:
        """``checked``: ``obj`` is a frozen version's manifest that was checked against its digest
        (see :meth:`ManifestEntry.from_checked_json`)."""
        if obj.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"unsupported manifest format {obj.get('format')!r}")
        entry = ManifestEntry.from_checked_json if checked else ManifestEntry.from_json
        entries = tuple(entry(e) for e in obj["episodes"])
        return cls(
            episodes=entries,
            created_from=dict(obj.get("created_from", {})),
            episode_schema_version=int(obj["episode_schema_version"]),
            parent=str(obj.get("parent", "")),
        )


def label_of(entry: ManifestEntry) -> str:
    """The outcome label a version gives an episode: the operator's verdict or the label the
    version pins (``outcome``), else the station's success flag (success / failure)."""
    if entry.outcome in LABELS:
        return entry.outcome
    return "success" if entry.success else "failure"


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
