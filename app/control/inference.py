"""Getting actions from the policy: one :class:`Proposal` per request, one action per period.

A policy (:class:`ProposalSource`) answers ``infer(state, step)`` with a :class:`Proposal`: the
action chunk, the extra outputs that belong to it (value estimates, world-model outputs) and the
step it was asked for, in one value. Nothing about a chunk is read from mutable attributes of the
policy, so an answer that arrives late, after the loop gave up on it, can never lend its extras to
another chunk.

:class:`PolicyFeed` turns those chunks into one action per control period: it executes a chunk's
first ``open_loop_steps`` actions open-loop, splices the next chunk onto the old one's tail, runs
the policy watchdog and the shape and NaN/Inf checks, and says when the robot must be held.

With a policy server on another machine an answer can take several control periods. Asked
synchronously, every new chunk would stall the loop for that long. With ``lead_steps`` > 0,
:class:`ChunkPrefetcher` sends the request that many periods before the current chunk's open-loop
window runs out, with the state of that moment, and the loop keeps executing the current chunk
while the answer travels. When the answer arrives at step ``s`` for a request made at step ``r``,
its first ``s - r`` actions belong to periods that are already over and are skipped
(:meth:`ChunkResult.actions_from`). One request is in flight at a time, including a forgotten one:
a request that outlives its episode, or that the loop gave up on, is never used, and no new
request is sent until it has returned, so a server that hangs does not collect a backlog.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from takeover.app.control.blending import ChunkSplicer
from takeover.app.control.pacing import Clock
from takeover.app.control.watchdog import Watchdogs


class PolicyUnavailable(RuntimeError):
    """The policy did not answer; the loop holds the robot."""


@dataclass(frozen=True)
class Proposal:
    """One answer of a policy: everything that belongs to one action chunk."""

    step: int
    """The loop step whose state the request carried."""
    actions: np.ndarray
    """(H, A) actions, the first meant for ``step``."""
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)
    """Extra outputs computed with this chunk (name -> array), recorded at the step it is used."""


class ProposalSource(Protocol):
    """Where proposed actions come from (a policy client, an in-process model, a test's script)."""

    policy_id: str

    def infer(self, state: np.ndarray, step: int) -> Proposal:
        """The chunk for this state; raise :class:`PolicyUnavailable` when there is none."""
        ...


@dataclass(frozen=True)
class ChunkResult:
    """A checked-in answer (or failure) for the request made at ``step``."""

    step: int
    chunk: np.ndarray | None
    """(H, A) float32 as the policy returned it, or None when the request failed."""
    error: BaseException | None
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def ask(cls, infer: Callable[[np.ndarray, int], Proposal], state: np.ndarray, step: int) -> ChunkResult:
        """Run one request; a :class:`PolicyUnavailable` becomes a failed result. The result is
        dated by the step the answer says it was computed for: a source that answers with a chunk
        asked for at an earlier step (one that arrived while the loop went on) has its actions for
        the periods already over skipped; one dated after the request is refused."""
        try:
            proposal = infer(state, step)
        except PolicyUnavailable as exc:
            return cls(step, None, exc)
        if proposal.step > step:
            why = f"the policy answered for step {proposal.step} a request made at step {step}"
            return cls(step, None, PolicyUnavailable(why))
        actions = np.asarray(proposal.actions, dtype=np.float32)
        return cls(proposal.step, actions, None, dict(proposal.extras))

    def actions_from(self, step: int) -> np.ndarray:
        """The actions meant for ``step`` and later (empty when the chunk ends before it)."""
        assert self.chunk is not None
        return self.chunk[max(step - self.step, 0) :]


_Job = tuple["Future[ChunkResult]", np.ndarray, int]


class ChunkPrefetcher:
    """One worker thread that runs ``infer(state, step)``; the loop submits and polls."""

    def __init__(self, infer: Callable[[np.ndarray, int], Proposal]) -> None:
        self._infer = infer
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

    @property
    def running(self) -> bool:
        """The worker thread exists (it is started by the first request, ended by :meth:`close`)."""
        return self._thread is not None and self._thread.is_alive()

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

    def close(self, timeout_s: float = 1.0) -> None:
        """End the worker thread (after the request in flight, if any, waiting up to ``timeout_s``)."""
        self._pending = None
        thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            thread.join(timeout_s)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fut, state, step = job
            try:
                result = ChunkResult.ask(self._infer, state, step)
            except Exception as exc:  # handed to the loop, which decides what it means
                result = ChunkResult(step, None, exc)
            fut.set_result(result)


@dataclass(frozen=True)
class FeedStep:
    """What the policy has for one period."""

    proposed: np.ndarray
    """The raw proposal to record (NaN when there is none)."""
    action: np.ndarray | None
    """The spliced action to execute when the policy drives, or None."""
    extras: dict[str, np.ndarray]
    """The extra outputs of the chunk that arrived this period (empty otherwise)."""
    hold: str = ""
    """Why the robot must be held now (a failed, late or malformed answer while the policy drives)."""


class PolicyFeed:
    """One action per period from a :class:`ProposalSource` (see the module's docstring)."""

    def __init__(
        self,
        policy: ProposalSource,
        *,
        open_loop_steps: int,
        splice_steps: int,
        lead_steps: int,
        watchdogs: Watchdogs,
        clock: Clock,
    ) -> None:
        self.policy = policy
        self.lead_steps = lead_steps
        self.watchdogs = watchdogs
        self.clock = clock
        self.splicer = ChunkSplicer(open_loop_steps, splice_steps)
        self.prefetch = ChunkPrefetcher(policy.infer) if lead_steps > 0 else None

    @property
    def timeout_s(self) -> float:
        return self.watchdogs.config.policy_timeout_ms / 1000.0

    def begin(self) -> None:
        """A new attempt: nothing of the previous one's chunks is used."""
        self.splicer.clear()
        if self.prefetch is not None:
            self.prefetch.forget()

    def next(self, state: np.ndarray, step: int, action_dim: int, driving: bool) -> FeedStep:
        """This period's proposal; ``driving``: the policy's action is executed now."""
        extras: dict[str, np.ndarray] = {}
        hold = ""
        if self.prefetch is not None:
            extras, hold = self._prefetched(state, step, action_dim, driving)
        elif self.splicer.needs_chunk:
            t0 = self.clock.now()
            result = ChunkResult.ask(self.policy.infer, state, step)
            extras, hold = self._use(result, step, self.clock.now() - t0, action_dim, driving)
        nxt = self.splicer.next()
        if nxt is None:
            return FeedStep(np.full(action_dim, np.nan, dtype=np.float32), None, extras, hold)
        return FeedStep(nxt[0].copy(), nxt[1], extras, hold)

    def end(self, drain_s: float) -> bool:
        """Between attempts the policy client is its owner's again (who may close it): wait for a
        request still in flight, at most ``drain_s``. True when none is."""
        return self.prefetch is None or self.prefetch.drain(drain_s)

    def close(self) -> None:
        """End the prefetch worker thread (at shutdown)."""
        if self.prefetch is not None:
            self.prefetch.close(2.0 * self.timeout_s)

    def _prefetched(
        self, state: np.ndarray, step: int, action_dim: int, driving: bool
    ) -> tuple[dict[str, np.ndarray], str]:
        """Ask ahead; use the answer when it is there. With nothing left to execute the loop waits
        for it, up to the policy watchdog's limit, as it would have waited for a synchronous one."""
        pf = self.prefetch
        assert pf is not None
        if not pf.pending and pf.idle and self.splicer.open_loop_left <= self.lead_steps:
            pf.submit(state, step, self.clock.now())
        if not pf.pending:
            return {}, ""
        limit = self.timeout_s
        starving = self.splicer.peek is None and driving
        wait = max(limit - (self.clock.now() - pf.requested_at), 0.0) if starving else 0.0
        result = pf.take(wait)
        waited = self.clock.now() - pf.requested_at
        if result is not None:
            return self._use(result, step, waited, action_dim, driving)
        if starving:  # it waited up to the limit (on the wall clock, which a test's clock is not)
            waited = max(waited, limit + 1e-6)
        late = self.watchdogs.policy(waited)
        if not late:
            return {}, ""
        pf.forget()  # give up on this request; a new one goes out once it has returned
        self.splicer.clear()
        return {}, late if driving else ""

    def _use(
        self, result: ChunkResult, step: int, waited_s: float, action_dim: int, driving: bool
    ) -> tuple[dict[str, np.ndarray], str]:
        """Check an answer and splice it in; (its extras, why to hold or "")."""
        if result.error is not None and not isinstance(result.error, PolicyUnavailable):
            raise result.error
        chunk = result.chunk
        failed = f"policy unavailable: {result.error}" if result.error is not None else ""
        late = self.watchdogs.policy(waited_s)
        if chunk is not None and (chunk.ndim != 2 or chunk.shape[1] != action_dim or len(chunk) == 0):
            failed, chunk = f"safety: policy chunk has shape {chunk.shape}", None
        elif chunk is not None and not np.all(np.isfinite(chunk)):
            failed, chunk = "safety: policy chunk is not finite (NaN/Inf refused)", None
        extras: dict[str, np.ndarray] = {}
        if chunk is not None:
            extras = result.extras
            chunk = result.actions_from(step)
            if len(chunk) == 0:
                failed, chunk = f"policy chunk for step {result.step} arrived after its last action", None
        if chunk is not None and not (late and driving):
            self.splicer.push(chunk)
        else:
            self.splicer.clear()
        return extras, (failed or late) if driving else ""
