"""What every export shares: only from a tag, the episodes chosen, a folder that appears only when
complete, a provenance file, and the per-step views (camera frames at each step, labels).

An export is written into a temporary folder beside ``out`` (``.<name>.partial-<pid>``) and
renamed to ``out`` when it is complete, so an interrupted export leaves nothing that looks
finished (a later export removes such leftovers of dead processes). ``provenance.json`` names the
format, the tag, the version digest and the episodes, and when the version pins training labels
(:mod:`takeover.storage.derived`, written by every format as per-step columns) their parameters
and the batch's figures (``training_labels``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from takeover.storage.derived import TrainingColumns, training_columns
from takeover.storage.errors import StorageError
from takeover.storage.manifest import LABELS, ManifestEntry, label_of
from takeover.storage.schema import ControlSource, Episode, EventKind
from takeover.storage.store import Store
from takeover.storage.video import VideoParams


class ExportError(StorageError):
    """An export that cannot be made as asked (one line for a person)."""


@dataclass(frozen=True)
class ExportSettings:
    """How the formats that can hold video encode it, and whether the replay buffer puts its
    images in videos beside the arrays."""

    video: VideoParams = field(default_factory=lambda: VideoParams("av1", gop=2, crf=30, preset="12"))
    """LeRobot's own defaults: AV1, a keyframe every 2 frames, crf 30, SVT-AV1's fastest preset
    (1.85 times preset 8's speed at 640x480, for a file within 4 % of its size)."""
    zarr_videos: bool = False
    """diffusion_policy replay buffer: ``videos/<episode>/<camera>.mp4`` instead of uint8 arrays."""


@dataclass(frozen=True)
class Chosen:
    tag: str
    digest: str
    entries: tuple[ManifestEntry, ...]
    training: TrainingColumns | None = None
    """The per-step training labels the version pins for the entries (None: it pins none)."""


def choose(
    store: Store, tag: str, episodes: Sequence[str] | None = None, labels: Sequence[str] | None = None
) -> Chosen:
    """The entries of the version ``tag`` names, narrowed to ``episodes`` and ``labels``."""
    version = store.resolve(tag)
    entries = list(version.manifest.episodes)
    if episodes:
        held = {e.episode_id for e in entries}
        missing = sorted(set(episodes) - held)
        if missing:
            raise ExportError(f"version {tag} does not hold: {', '.join(missing[:5])}")
        entries = [e for e in entries if e.episode_id in set(episodes)]
    if labels:
        unknown = sorted(set(labels) - set(LABELS))
        if unknown:
            raise ExportError(f"unknown label(s) {', '.join(unknown)}: choose from {', '.join(LABELS)}")
        entries = [e for e in entries if label_of(e) in set(labels)]
    if not entries:
        raise ExportError(f"nothing to export: no episode of {tag} is left by the filters")
    return Chosen(tag, version.digest, tuple(entries), training_columns(store.derived_blobs, entries, tag))


def check_uniform(episodes: Sequence[Episode], fmt: str) -> None:
    """One rate, one state and one action dimension across the episodes, or one line saying which
    episodes differ (the formats hold one of each per dataset)."""
    for what, value in (
        ("control rate", lambda ep: f"{ep.meta.rate_hz:g} Hz"),
        ("state dimension", lambda ep: str(np.asarray(ep.state).shape[1])),
        ("action dimension", lambda ep: str(np.asarray(ep.action).shape[1])),
    ):
        seen: dict[str, str] = {}
        for ep in episodes:
            seen.setdefault(value(ep), ep.meta.episode_id)
        if len(seen) > 1:
            shown = ", ".join(f"{v} ({eid})" for v, eid in seen.items())
            raise ExportError(
                f"{fmt} holds one {what} per dataset, and these episodes have several: {shown}; "
                "export them separately (--episodes)"
            )


def uniform_cameras(episodes: Sequence[Episode], fmt: str, holder: str) -> dict[str, tuple[int, int]]:
    """The cameras (sorted) and their (height, width), the same in every episode, or one line
    saying which episodes differ (``fmt`` holds one ``holder`` per camera)."""
    seen: dict[str, str] = {}
    for ep in episodes:
        shown = ", ".join(f"{n} {c.width}x{c.height}" for n, c in sorted(ep.cameras.items())) or "none"
        seen.setdefault(shown, ep.meta.episode_id)
    if len(seen) > 1:
        listed = "; ".join(f"{v} ({eid})" for v, eid in seen.items())
        raise ExportError(
            f"{fmt} holds one {holder} per camera, and these episodes have different "
            f"cameras or sizes: {listed}; export them separately (--episodes)"
        )
    first = episodes[0].cameras
    return {name: (int(first[name].height), int(first[name].width)) for name in sorted(first)}


def _partial_name(out: Path) -> str:
    return f".{out.name}.partial-"


def _remove_dead_leftovers(out: Path) -> None:
    for old in out.parent.glob(_partial_name(out) + "*"):
        pid = old.name.rsplit("-", 1)[-1]
        alive = pid.isdigit() and _alive(int(pid))
        if not alive:
            shutil.rmtree(old, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def export_folder(out: Path, fmt: str, chosen: Chosen) -> Iterator[Path]:
    """A temporary folder to write the export into; renamed to ``out`` when the block ends
    without error, with ``provenance.json`` written last; removed otherwise."""
    out = out.expanduser().absolute()
    if out.exists():
        raise ExportError(f"{out} already exists: exports never overwrite; choose another --out")
    if not out.parent.is_dir():
        raise ExportError(f"the folder {out.parent} does not exist")
    _remove_dead_leftovers(out)
    tmp = out.parent / f"{_partial_name(out)}{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        provenance = {
            "format": fmt,
            "tag": chosen.tag,
            "version": chosen.digest,
            "episodes": [e.episode_id for e in chosen.entries],
            "exported_at": time.time(),
        }
        if chosen.training is not None:
            provenance["training_labels"] = chosen.training.figures
        (tmp / "provenance.json").write_text(json.dumps(provenance, indent=1, sort_keys=True) + "\n")
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def frames_at_steps(ep: Episode, camera: str, start: int, stop: int) -> tuple[list[int | None], int, int]:
    """Per step of ``[start, stop)``, the number of the latest frame of ``camera`` captured at or
    before it (None before its first frame), as `pull` shows them; with the frame height and width."""
    cam = ep.cameras[camera]
    steps = np.asarray(cam.step_index)
    order = np.lexsort((np.asarray(cam.timestamps), steps))
    ordered = steps[order]
    out: list[int | None] = []
    for step in range(start, stop):
        pos = int(np.searchsorted(ordered, step, side="right")) - 1
        out.append(None if pos < 0 else int(order[pos]))
    return out, int(cam.height), int(cam.width)


class EarlySteps:
    """Steps before a camera's first frame, gathered over an export and said once per camera at
    the end (a line per episode would bury the rest of the output of a large export)."""

    def __init__(self) -> None:
        self.seen: dict[str, list[tuple[str, int]]] = {}

    def add(self, camera: str, episode_id: str, valid: np.ndarray) -> None:
        missing = int((~np.asarray(valid, dtype=bool)).sum())
        if missing:
            self.seen.setdefault(camera, []).append((episode_id, missing))

    def report(self, say: Callable[[str], None], filled: str, flag: Callable[[str], str]) -> None:
        """One line per camera: how many first steps of which episodes had no frame yet, what
        stands there (``filled``) and the flag that marks them (``flag(camera)``)."""
        for camera, items in sorted(self.seen.items()):
            counts = [n for _, n in items]
            span = str(min(counts)) if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}"
            ids = [eid for eid, _ in items]
            shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
            episodes = "1 episode" if len(ids) == 1 else f"{len(ids)} episodes"
            say(
                f"camera {camera} has no frame yet for the first {span} step(s) of {episodes} "
                f"({shown}): {filled} there, {flag(camera)} false"
            )


def interventions(ep: Episode, start: int, stop: int) -> int:
    """The takeovers within the step range."""
    return sum(1 for e in ep.events if e.kind is EventKind.TAKEOVER and start <= e.step < stop)


def human_steps(control_source: np.ndarray) -> np.ndarray:
    """True where the human drove (LeRobot's ``intervention``)."""
    return np.asarray(control_source) == int(ControlSource.HUMAN)
