"""Decoded camera frames for scrubbing, without Qt: a byte-bounded LRU, the frames of one step
across all cameras, and which steps to decode ahead of the cursor.

The review screen's frame worker (``app/gui/review/frame_thread.py``) runs this off the GUI
thread: it serves the newest request (:class:`Latest` drops the ones the cursor has left behind),
then, while nothing new is asked, decodes the steps :func:`prefetch_steps` names into the
cache, so stepping on or jumping by a second finds its frames decoded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from takeover.annotation.review_episode import ReviewEpisode
from takeover.storage.jpeg import decode_rgb

DEFAULT_CACHE_BYTES = 256 * 1024 * 1024
"""Decoded frames kept: about 90 steps of three 640x480 cameras."""
AHEAD_STEPS = 12
"""Steps decoded ahead of the cursor in the direction it moves."""
BEHIND_STEPS = 3

FrameKey = tuple[str, str, int]
"""(episode id, camera, frame number)."""


class FrameCache:
    """Decoded frames by :data:`FrameKey`, the least recently used dropped beyond ``max_bytes``.
    Used by one thread (the frame worker)."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._frames: OrderedDict[FrameKey, np.ndarray] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._frames)

    def __contains__(self, key: FrameKey) -> bool:
        return key in self._frames

    def get(self, key: FrameKey) -> np.ndarray | None:
        frame = self._frames.get(key)
        if frame is None:
            self.misses += 1
            return None
        self.hits += 1
        self._frames.move_to_end(key)
        return frame

    def put(self, key: FrameKey, frame: np.ndarray) -> None:
        old = self._frames.pop(key, None)
        if old is not None:
            self.bytes -= old.nbytes
        self._frames[key] = frame
        self.bytes += frame.nbytes
        while self.bytes > self.max_bytes and len(self._frames) > 1:
            _, dropped = self._frames.popitem(last=False)
            self.bytes -= dropped.nbytes


@dataclass(frozen=True, eq=False)
class Shown:
    """What one camera shows at a step: its frame number and RGB pixels, or nothing yet."""

    index: int | None
    """The frame's number in its camera's stream (None: no frame yet at this step)."""
    rgb: np.ndarray | None
    """uint8 (H, W, 3); None with ``index`` None."""


class FrameReader:
    """Decodes the frames a step shows, through a :class:`FrameCache`."""

    def __init__(self, cache: FrameCache | None = None, decode: Callable[[bytes], np.ndarray] = decode_rgb):
        self.cache = cache if cache is not None else FrameCache()
        self.decode = decode
        self.decoded = 0
        """Frames decoded so far (not served from the cache)."""

    def frame(self, episode: ReviewEpisode, camera: str, index: int) -> np.ndarray:
        key = (episode.episode_id, camera, index)
        rgb = self.cache.get(key)
        if rgb is None:
            rgb = self.decode(episode.cameras[camera].frames[index])
            self.decoded += 1
            self.cache.put(key, rgb)
        return rgb

    def frames_at(self, episode: ReviewEpisode, step: int) -> dict[str, Shown]:
        """Camera -> what it shows at ``step``."""
        return {
            camera: Shown(index, None if index is None else self.frame(episode, camera, index))
            for camera, index in episode.frame_indices(step).items()
        }

    def prefetch(self, episode: ReviewEpisode, steps: list[int], stop: Callable[[], bool]) -> int:
        """Decode the frames of ``steps`` not cached yet, checking ``stop`` before each; returns
        how many were decoded."""
        done = 0
        for step in steps:
            for camera, index in episode.frame_indices(step).items():
                if index is None or (episode.episode_id, camera, index) in self.cache:
                    continue
                if stop():
                    return done
                self.frame(episode, camera, index)
                done += 1
        return done


def prefetch_steps(episode: ReviewEpisode, cursor: int, direction: int) -> list[int]:
    """The steps to decode next, nearest first: ahead of ``cursor`` in ``direction`` (+1 or -1;
    0 counts as forward), a few behind, then a second either way (a Shift+arrow jump)."""
    sign = -1 if direction < 0 else 1
    wanted = [cursor + sign * k for k in range(1, AHEAD_STEPS + 1)]
    wanted += [cursor - sign * k for k in range(1, BEHIND_STEPS + 1)]
    second = episode.steps_per_second
    wanted += [cursor + sign * second, cursor - sign * second]
    seen: set[int] = set()
    out = []
    for step in wanted:
        if 0 <= step <= episode.last_step and step != cursor and step not in seen:
            seen.add(step)
            out.append(step)
    return out


T = TypeVar("T")


class Latest(Generic[T]):
    """A mailbox that keeps only the newest item: a request the cursor has left behind is
    replaced, never served late. Thread-safe."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self.dropped = 0
        """Items replaced before they were taken."""

    def put(self, item: T) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify_all()

    def pending(self) -> bool:
        """True if an item waits (a worker checks this between frames of a prefetch)."""
        with self._cond:
            return self._item is not None or self._closed

    def close(self) -> None:
        """Wake the taker; :meth:`take` returns None from now on."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def take(self, timeout: float | None = None) -> T | None:
        """The newest item (waiting up to ``timeout`` s; None if none came or the box is closed)."""
        with self._cond:
            if not self._closed and self._item is None:
                self._cond.wait(timeout)
            if self._closed:
                return None
            item, self._item = self._item, None
            return item

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    def __iter__(self) -> Iterator[T]:
        """Items as they come, until closed."""
        while not self.closed:
            item = self.take()
            if item is not None:
                yield item
