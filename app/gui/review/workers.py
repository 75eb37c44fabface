"""The review screen's worker threads: nothing that touches the disk runs on the GUI thread.

- :class:`StoreThread` opens the store, lists its episodes and reads the one being reviewed (an
  episode asked for while another loads replaces it: pressing J five times reads one episode);
- :class:`LabelWriter` writes each label (and each boundary edit) as a revision, in the order
  given, and reports the episode's new heads; :meth:`LabelWriter.finish` lets every queued label
  be written, so closing the window never loses one;
- :class:`FrameThread` decodes the frames of the step under the cursor, newest request first
  (stale ones are dropped), and decodes ahead while nothing is asked.

Results come back through signals, queued to the GUI thread. A failure is a one-line message
(:func:`problem_text`), shown in the window, never a traceback.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from PyQt6.QtCore import QThread, pyqtSignal

from takeover.annotation.boundary_edits import edit_boundary
from takeover.annotation.labels import Rule, Vocabulary, relabel
from takeover.annotation.params import SmoothingParams
from takeover.annotation.review_boundaries import load_hand_overs
from takeover.annotation.review_episode import ReviewEpisode, load_review_episode
from takeover.annotation.review_frames import FrameCache, FrameReader, Latest, Shown, prefetch_steps
from takeover.annotation.review_model import ReviewList
from takeover.storage.errors import StorageError
from takeover.storage.label_revisions import Label
from takeover.storage.store import Store

MESSAGE_CHARS = 300


def problem_text(exc: BaseException, doing: str) -> str:
    """One line a person can read: a storage error's own words; anything else named, capped."""
    if isinstance(exc, StorageError):
        text = str(exc)
    else:
        first = (str(exc).splitlines() or [""])[0]
        text = f"could not {doing}: {type(exc).__name__}: {first}" if first else f"could not {doing}"
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


@dataclass(frozen=True)
class ListSource:
    """Which episodes the list holds and how labels are resolved."""

    annotator: str
    rule: Rule = Rule.LEAD
    tag: str | None = None
    """Only the episodes of this version."""


class StoreThread(QThread):
    """Opens the store, then serves list and episode requests until :meth:`stop`."""

    opened = pyqtSignal(object)
    """The :class:`Store` (for the label writer)."""
    open_failed = pyqtSignal(str)
    listed = pyqtSignal(object)
    """A :class:`ReviewList`."""
    list_failed = pyqtSignal(str)
    episode_loaded = pyqtSignal(object)
    """A :class:`ReviewEpisode`."""
    episode_failed = pyqtSignal(str, str)
    """Episode id, what went wrong."""
    hand_overs = pyqtSignal(object)
    """The :class:`HandOvers` of the episode loaded last."""

    def __init__(
        self, open_store: Callable[[], Store], source: ListSource, smoothing: SmoothingParams | None = None
    ) -> None:
        super().__init__()
        self._open_store = open_store
        self.source = source
        self.smoothing = smoothing
        self._jobs: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
        self._wanted = ""
        """The episode asked for last: an older request still queued is skipped."""
        self.store: Store | None = None
        self._loaded: ReviewEpisode | None = None

    def request_list(self) -> None:
        self._jobs.put(("list", ""))

    def request_episode(self, episode_id: str) -> None:
        self._wanted = episode_id
        self._jobs.put(("episode", episode_id))

    def request_hand_overs(self, episode_id: str) -> None:
        """The hand-overs of the episode shown again (after one of its boundaries was edited)."""
        self._jobs.put(("hand_overs", episode_id))

    def stop(self) -> None:
        """Finish the job at hand, then end (the store is closed by the thread)."""
        self._jobs.put(None)

    def run(self) -> None:
        try:
            store = self.store = self._open_store()
        except Exception as exc:
            self.open_failed.emit(problem_text(exc, "open the store"))
            return
        try:
            self.opened.emit(store)
            self._list(store)
            while (job := self._jobs.get()) is not None:
                kind, episode_id = job
                if kind == "list":
                    self._list(store)
                elif kind == "hand_overs":
                    self._hand_overs(store, episode_id)
                elif episode_id == self._wanted:
                    self._episode(store, episode_id)
        finally:
            store.close()

    def _list(self, store: Store) -> None:
        try:
            ids = None
            if self.source.tag is not None:
                ids = [e.episode_id for e in store.episodes_in(self.source.tag)]
            listing = ReviewList.load(
                store, annotator=self.source.annotator, rule=self.source.rule, episode_ids=ids
            )
        except Exception as exc:
            self.list_failed.emit(problem_text(exc, "list the episodes"))
            return
        self.listed.emit(listing)

    def _episode(self, store: Store, episode_id: str) -> None:
        try:
            episode = load_review_episode(store, episode_id)
        except Exception as exc:
            self.episode_failed.emit(episode_id, problem_text(exc, f"read episode {episode_id}"))
            return
        self._loaded = episode
        self.episode_loaded.emit(episode)
        if episode_id != self._wanted:
            return
        self._hand_overs(store, episode_id)

    def _hand_overs(self, store: Store, episode_id: str) -> None:
        loaded = self._loaded
        if loaded is None or loaded.episode_id != episode_id or episode_id != self._wanted:
            return
        try:
            self.hand_overs.emit(load_hand_overs(store, loaded.episode, self.smoothing))
        except Exception as exc:
            self.episode_failed.emit(episode_id, problem_text(exc, "find the hand-overs"))


@dataclass(frozen=True)
class BoundaryJob:
    """An edit of one recorded boundary (:func:`edit_boundary`): where it counts from, and the
    first step of the pre-intervention window (None: the default window)."""

    episode_id: str
    kind: str
    recorded_step: int
    step: int
    pre_window_start: int | None


class LabelWriter(QThread):
    """Writes labels as revisions (:func:`relabel`) and boundary edits (:func:`edit_boundary`),
    one at a time, in order."""

    saved = pyqtSignal(object, object)
    """The new :class:`LabelRevision`, and the episode's heads now."""
    boundary_saved = pyqtSignal(object)
    """The new :class:`~takeover.storage.boundary_edits.BoundaryEdit`."""
    boundary_failed = pyqtSignal(str, str)
    """Episode id, why the boundary edit was not written."""
    failed = pyqtSignal(str, str)
    """Episode id, why nothing was written."""

    def __init__(self, store: Store, annotator: str, role: str, vocabulary: Vocabulary) -> None:
        super().__init__()
        self.store = store
        self.annotator = annotator
        self.role = role
        self.vocabulary = vocabulary
        self._jobs: queue.SimpleQueue[tuple[str, Label] | BoundaryJob | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Labels given and not yet written."""
        with self._lock:
            return self._waiting

    def submit(self, episode_id: str, label: Label) -> None:
        with self._lock:
            self._waiting += 1
        self._jobs.put((episode_id, label))

    def submit_boundary(self, job: BoundaryJob) -> None:
        with self._lock:
            self._waiting += 1
        self._jobs.put(job)

    def finish(self) -> None:
        """Write what is queued, then end."""
        self._jobs.put(None)

    def _boundary(self, job: BoundaryJob) -> None:
        try:
            edit = edit_boundary(
                self.store,
                job.episode_id,
                job.kind,
                job.recorded_step,
                step=job.step,
                pre_window_start=job.pre_window_start,
                annotator=self.annotator,
                role=self.role,
            )
        except Exception as exc:
            self.boundary_failed.emit(
                job.episode_id, problem_text(exc, f"edit a boundary of {job.episode_id}")
            )
        else:
            self.boundary_saved.emit(edit)
        finally:
            with self._lock:
                self._waiting -= 1

    def run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if isinstance(job, BoundaryJob):
                self._boundary(job)
                continue
            episode_id, label = job
            try:
                revision = relabel(
                    self.store,
                    episode_id,
                    label,
                    annotator=self.annotator,
                    role=self.role,
                    vocabulary=self.vocabulary,
                )
                heads = self.store.labels.heads([episode_id]).get(episode_id, [])
            except Exception as exc:
                self.failed.emit(episode_id, problem_text(exc, f"label {episode_id}"))
            else:
                self.saved.emit(revision, heads)
            finally:
                with self._lock:
                    self._waiting -= 1


@dataclass(frozen=True, eq=False)
class FramesAt:
    """What every camera shows at one step of one episode."""

    request: int
    episode_id: str
    step: int
    shown: dict[str, Shown]


@dataclass(frozen=True, eq=False)
class _FrameRequest:
    request: int
    episode: ReviewEpisode
    step: int
    direction: int


class FrameThread(QThread):
    """Decodes the frames of the newest requested step; prefetches while idle."""

    ready = pyqtSignal(object)
    """A :class:`FramesAt`."""
    failed = pyqtSignal(int, str)
    """Request number, what went wrong."""

    def __init__(self, cache_bytes: int | None = None) -> None:
        super().__init__()
        self.reader = FrameReader(FrameCache(cache_bytes) if cache_bytes else None)
        self._box: Latest[_FrameRequest] = Latest()
        self._count = 0

    @property
    def dropped(self) -> int:
        """Requests replaced by newer ones before they were served."""
        return self._box.dropped

    def request(self, episode: ReviewEpisode, step: int, direction: int = 1) -> int:
        """Ask for the frames at ``step``; returns the request's number (they grow)."""
        self._count += 1
        self._box.put(_FrameRequest(self._count, episode, step, direction))
        return self._count

    def stop(self) -> None:
        self._box.close()

    def run(self) -> None:
        for req in self._box:
            try:
                shown = self.reader.frames_at(req.episode, req.step)
            except Exception as exc:
                self.failed.emit(req.request, problem_text(exc, f"decode the frames at step {req.step}"))
                continue
            self.ready.emit(FramesAt(req.request, req.episode.episode_id, req.step, shown))
            try:
                plan = prefetch_steps(req.episode, req.step, req.direction)
                self.reader.prefetch(req.episode, plan, stop=self._box.pending)
            except Exception:  # a frame that does not decode is reported when it is shown
                continue
