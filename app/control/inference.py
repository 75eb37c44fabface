"""Asking the policy for its next chunk ahead of time, on a worker thread.

With a policy server on another machine an answer can take several control periods. Asked
synchronously, every new chunk would stall the loop for that long. :class:`ChunkPrefetcher` sends
the request ``lead`` periods before the current chunk's open-loop window runs out, with the state
of that moment, and the loop keeps executing the current chunk while the answer travels. When the
answer arrives at step ``s`` for a request made at step ``r``, its first ``s - r`` actions belong
to periods that are already over and are skipped (``ChunkResult.actions_from``).

One request is in flight at a time, including a forgotten one: a request that outlives its episode,
or that the loop gave up on, is never used, and no new request is sent until it has returned, so a
server that hangs does not collect a backlog.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ChunkResult:
    step: int
    """The loop step whose state the request carried."""
    chunk: np.ndarray | None
    """(H, A) float32 as the policy returned it, or None when the request failed."""
    error: BaseException | None
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def actions_from(self, step: int) -> np.ndarray:
        """The actions meant for ``step`` and later (empty when the chunk ends before it)."""
        assert self.chunk is not None
        return self.chunk[max(step - self.step, 0) :]


_Job = tuple["Future[ChunkResult]", np.ndarray, int]


class ChunkPrefetcher:
    """One worker thread that runs ``infer(state, step)``; the loop submits and polls."""

    def __init__(
        self, infer: Callable[[np.ndarray, int], np.ndarray], extras: Callable[[], dict[str, np.ndarray]]
    ) -> None:
        self._infer = infer
        self._extras = extras
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pending: Future[ChunkResult] | None = None
        self._inflight: Future[ChunkResult] | None = None
        self.requested_at = 0.0
        """Loop clock reading when the pending request was submitted."""

    @property
    def pending(self) -> bool:
        """A request whose answer the loop is waiting for."""
        return self._pending is not None

    @property
    def idle(self) -> bool:
        """No request in flight, not even a forgotten one: a new one may be sent."""
        return self._inflight is None or self._inflight.done()

    def submit(self, state: np.ndarray, step: int, now: float) -> None:
        if self._pending is not None or not self.idle:
            raise RuntimeError("a chunk request is already in flight")
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="policy-prefetch", daemon=True)
            self._thread.start()
        fut: Future[ChunkResult] = Future()
        self._pending = self._inflight = fut
        self.requested_at = now
        self._jobs.put((fut, np.array(state, copy=True), step))

    def take(self, wait_s: float = 0.0) -> ChunkResult | None:
        """The pending request's result once it is there (waiting up to ``wait_s``), else None."""
        fut = self._pending
        if fut is None:
            return None
        if not fut.done():
            if wait_s <= 0:
                return None
            try:
                fut.result(timeout=wait_s)
            except TimeoutError:
                return None
        self._pending = None
        return fut.result()

    def forget(self) -> None:
        """Drop the pending request (a new episode, or given up on): its answer will be ignored."""
        self._pending = None

    def drain(self, timeout_s: float) -> bool:
        """Forget the pending request and wait up to ``timeout_s`` until none is in flight, so the
        policy client is not in use by the worker outside an episode. True when idle."""
        self._pending = None
        fut = self._inflight
        if fut is None:
            return True
        try:
            fut.result(timeout=timeout_s)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self._pending = None
        if self._thread is not None:
            self._jobs.put(None)
            self._thread = None

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fut, state, step = job
            try:
                chunk = np.asarray(self._infer(state, step), dtype=np.float32)
                result = ChunkResult(step, chunk, None, dict(self._extras()))
            except Exception as exc:  # handed to the loop, which decides what it means
                result = ChunkResult(step, None, exc)
            fut.set_result(result)
