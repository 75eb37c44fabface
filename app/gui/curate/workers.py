"""The curation screen's worker threads: all disk and catalog work happens on them.

- :class:`SessionThread` owns the store and a :class:`CurationSession` and runs the window's
  requests one at a time, in order (read the facts, select, freeze, list versions, diff); each
  answer comes back through a queued signal with the request's number, so the window can drop an
  answer it no longer wants (a query typed over).
- :class:`ExportThread` writes one export with the writers of ``takeover.storage.exports`` on a
  store of its own, reporting the episodes done (the writers' progress, through
  :func:`takeover.storage.progress.reporting_to`).

A store that does not open, or a request that fails, becomes one line for the window, never a
traceback.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from PyQt6.QtCore import QThread, pyqtSignal

from takeover.annotation.curation_session import CurationSession
from takeover.annotation.labels import Rule
from takeover.storage.errors import StorageError
from takeover.storage.exports import lerobot, robomimic, zarr_replay
from takeover.storage.exports.common import ExportSettings, choose, export_folder
from takeover.storage.progress import reporting_to
from takeover.storage.store import Store

log = logging.getLogger(__name__)

StoreOpener = Callable[[], Store]
"""Opens the store (on the thread that will use it)."""
Request = Callable[[CurationSession], Any]

EXPORT_FORMATS: dict[str, ModuleType] = {"lerobot": lerobot, "robomimic": robomimic, "zarr": zarr_replay}
"""Format name (as `takeover data export --format` names it) -> its writer."""


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, StorageError):
        return str(exc)
    log.exception("curation request failed")
    return f"unexpected error ({type(exc).__name__}): {exc}"


class SessionThread(QThread):
    """Runs requests against a curation session on its own store; emits ``answered(number, kind,
    result)`` or ``failed(number, kind, message)`` for each, ``opened(episodes)`` once the store
    is open and its facts read, or ``unavailable(message)`` if it does not open."""

    opened = pyqtSignal(int)
    unavailable = pyqtSignal(str)
    answered = pyqtSignal(int, str, object)
    failed = pyqtSignal(int, str, str)

    def __init__(self, opener: StoreOpener, rule: Rule = Rule.LEAD) -> None:
        super().__init__()
        self._opener = opener
        self._rule = rule
        self._queue: queue.SimpleQueue[tuple[int, str, Request] | None] = queue.SimpleQueue()
        self._number = 0

    def submit(self, kind: str, request: Request) -> int:
        """Queue ``request`` (called with the session on this thread); returns its number."""
        self._number += 1
        self._queue.put((self._number, kind, request))
        return self._number

    def finish(self) -> None:
        """Run what is queued, then end the thread."""
        self._queue.put(None)

    def run(self) -> None:
        try:
            store = self._opener()
        except Exception as exc:
            self.unavailable.emit(_one_line(exc))
            while (item := self._queue.get()) is not None:
                self.failed.emit(item[0], item[1], "the store is not open")
            return
        try:
            session = CurationSession(store, self._rule)
            try:
                self.opened.emit(len(session.facts))
            except Exception as exc:
                self.unavailable.emit(_one_line(exc))
            while (item := self._queue.get()) is not None:
                number, kind, request = item
                try:
                    result = request(session)
                except Exception as exc:
                    self.failed.emit(number, kind, _one_line(exc))
                else:
                    self.answered.emit(number, kind, result)
        finally:
            store.close()


@dataclass(frozen=True)
class ExportJob:
    tag: str
    fmt: str
    out: Path


@dataclass(frozen=True)
class Exported:
    job: ExportJob
    episodes: int
    steps: int
    notes: tuple[str, ...]
    """What the writer said on the way (cameras without a frame yet, ...)."""


class ExportThread(QThread):
    """Writes one export; emits ``progress(done, total)`` as episodes are written, then
    ``exported(Exported)`` or ``failed(message)``."""

    progress = pyqtSignal(int, int)
    exported = pyqtSignal(object)
    failed = pyqtSignal(str)

    def __init__(self, opener: StoreOpener, job: ExportJob, settings: ExportSettings | None = None) -> None:
        super().__init__()
        self._opener = opener
        self.job = job
        self._settings = settings or ExportSettings()

    def run(self) -> None:
        job = self.job
        notes: list[str] = []

        def told(description: str, total: int | None, done: int) -> None:
            self.progress.emit(done, total or 0)

        try:
            writer = EXPORT_FORMATS[job.fmt]
            with self._opener() as store:
                chosen = choose(store, job.tag)
                self.progress.emit(0, len(chosen.entries))
                with export_folder(job.out, job.fmt, chosen) as folder, reporting_to(told):
                    steps = writer.write(store, chosen, folder, self._settings, say=notes.append)
        except OSError as exc:  # e.g. a full disk: the partial export is already removed
            self.failed.emit(f"cannot write the export into {job.out.parent}: {exc.strerror or exc}")
        except Exception as exc:
            self.failed.emit(_one_line(exc))
        else:
            self.exported.emit(Exported(job, len(chosen.entries), int(steps), tuple(notes)))
