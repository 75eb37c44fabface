"""The training cache: a version's camera frames decoded and resized once into raw uint8 arrays
that training reads through memory maps, with no JPEG decoding per sample.

One folder per (version digest, camera, size): ``<cache>/train/<version>-<camera>-<H>x<W>/`` with
``frames.npy`` (F, 3, H, W) uint8 RGB, each distinct frame the version shows once, and
``rows.npy`` (N,) int32, for each of the version's N steps the row of its frame (-1 where the
step has no frame of the camera). Both are plain ``.npy`` arrays (no pickle). A build writes into
a temporary folder (``.build-...``) and renames it into place when complete, so a folder under its
final name is always whole; builders of the same folder take turns (a lock), and the one that
comes second finds the work done.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from takeover.storage.progress import progress_bar

Size = tuple[int, int]
"""(height, width) of the cached frames."""

FrameSource = Callable[[int, int], np.ndarray | None]
"""(episode index, step) -> the frame there, uint8 (3, H, W) RGB at its recorded size."""


def parse_size(text: str) -> Size:
    """``"224x224"`` (height x width) -> (224, 224)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or not (0 < int(m.group(1)) <= 8192 and 0 < int(m.group(2)) <= 8192):
        raise ValueError(f"an image size is HEIGHTxWIDTH in pixels, e.g. 224x224 (got {text!r})")
    return int(m.group(1)), int(m.group(2))


def cache_path(root: Path, version: str, camera: str, size: Size) -> Path:
    """Where the training cache of one camera of a version at one size lives under ``root``."""
    return Path(root) / "train" / f"{version}-{camera}-{size[0]}x{size[1]}"


def is_built(path: Path) -> bool:
    return (path / "frames.npy").is_file() and (path / "rows.npy").is_file()


def resize_chw(img: np.ndarray, size: Size) -> np.ndarray:
    """uint8 (3, h, w) -> (3, H, W), area-averaged when shrinking."""
    h, w = size
    if img.shape[1:] == (h, w):
        return img
    hwc = np.ascontiguousarray(img.transpose(1, 2, 0))
    shrink = h <= img.shape[1] and w <= img.shape[2]
    out = cv2.resize(hwc, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return np.ascontiguousarray(out.transpose(2, 0, 1))


class FrameArray:
    """One camera's training cache, read through memory maps opened on first use in each process
    (nothing is copied to a DataLoader worker but the folder's path)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._pid = -1
        self._rows: np.ndarray | None = None
        self._frames: np.ndarray | None = None

    def _open(self) -> tuple[np.ndarray, np.ndarray]:
        if self._rows is None or self._frames is None or self._pid != os.getpid():
            self._rows = np.load(self.path / "rows.npy", mmap_mode="r", allow_pickle=False)
            self._frames = np.load(self.path / "frames.npy", mmap_mode="r", allow_pickle=False)
            self._pid = os.getpid()
        return self._rows, self._frames

    def frame(self, row: int) -> np.ndarray | None:
        """The cached frame of the version's step ``row`` (a copy), or None if it has none."""
        rows, frames = self._open()
        r = int(rows[row])
        return None if r < 0 else np.array(frames[r])

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]


def build(
    path: Path,
    rows: np.ndarray,
    firsts: Sequence[tuple[int, int]],
    frame: FrameSource,
    size: Size,
    *,
    progress: bool = False,
) -> None:
    """Build the training cache at ``path`` unless it is there: ``rows`` (N,) maps each step of the
    version to a frame row (-1: none); frame row ``k`` is ``frame(*firsts[k])`` resized to ``size``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent / f"{path.name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if is_built(path):
            return
        for old in path.parent.glob(f".build-{path.name}-*"):
            shutil.rmtree(old, ignore_errors=True)  # an interrupted build's (the lock is ours)
        tmp = Path(tempfile.mkdtemp(prefix=f".build-{path.name}-", dir=path.parent))
        try:
            _fill(tmp, rows, firsts, frame, size, progress)
            os.rename(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        os.close(fd)


def _fill(
    tmp: Path,
    rows: np.ndarray,
    firsts: Sequence[tuple[int, int]],
    frame: FrameSource,
    size: Size,
    progress: bool,
) -> None:
    np.save(tmp / "rows.npy", np.asarray(rows, dtype=np.int32), allow_pickle=False)
    shape = (len(firsts), 3, size[0], size[1])
    frames = np.lib.format.open_memmap(tmp / "frames.npy", mode="w+", dtype=np.uint8, shape=shape)
    what = f"resizing frames to {size[0]}x{size[1]}"
    with progress_bar(what, len(firsts), enabled=progress, unit="frames") as advance:
        for k, (ep, step) in enumerate(firsts):
            img = frame(ep, step)
            if img is None:
                raise ValueError(f"episode {ep} has no frame at step {step}")
            frames[k] = resize_chw(img, size)
            advance(1)
    frames.flush()
    del frames
    for name in ("rows.npy", "frames.npy"):
        with open(tmp / name, "rb") as f:
            os.fsync(f.fileno())
