"""The control loop's view of a policy server: action chunks by ZeroMQ request, never blocking
the loop for longer than the policy watchdog allows.

Requests run on a worker thread. :meth:`RemotePolicy.infer` starts one (unless one is already in
flight) and waits for its answer at most ``infer_timeout_s``. When the server is slow or gone,
the loop gets :class:`PolicyUnavailable` after that wait, once; while the same request is still
outstanding, and until a request succeeds again, later calls only poll: they fail at once
instead of stalling every period. An answer that arrives after its request was given up on is
stale (it was computed for an old state) and is dropped: the next call asks again with the
current state.

:meth:`RemotePolicy.deploy` asks the server to serve another checkpoint (between attempts) and
takes the new policy's id, which the loop records with the next attempt; a chunk made by another
policy than the one named (someone deployed to the server directly) brings its id too.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from takeover.app.control.inference import PolicyUnavailable, Proposal, ProposalSource
from takeover.app.net import curve
from takeover.app.policy.protocol import DeployReply


class PolicyConnectError(RuntimeError):
    """No policy server answered the health check at connect."""


@dataclass
class _Request:
    state: np.ndarray
    step: int
    sent_at: float
    done: threading.Event = field(default_factory=threading.Event)
    answer: Proposal | None = None
    error: str = ""
    given_up: bool = False


class RemotePolicy(ProposalSource):
    """Chunks from a policy server. When the server sets an open-loop horizon, chunks are cut to
    it, so the loop asks again after that many steps. Each answer travels with its own request
    (its actions, extras and step together), so a late answer that was given up on is dropped whole."""

    def __init__(
        self,
        url: str,
        timeout_s: float,
        keys: curve.ClientKeys | None = None,
        infer_timeout_s: float | None = None,
    ) -> None:
        """``timeout_s`` bounds the health check at connect and each request on the wire;
        ``infer_timeout_s`` (default the same) bounds how long the loop waits for a chunk."""
        from takeover.app.policy.client import PolicyClient

        self.url = url
        self._client = PolicyClient(url, timeout_s=timeout_s, keys=keys)
        self._infer_timeout_s = infer_timeout_s or timeout_s
        self.policy_id = "unknown"
        self._requests: queue.Queue[_Request | None] = queue.Queue()
        self._pending: _Request | None = None
        self._healthy = True
        """False after a request failed or was given up on: then the loop never waits for an answer."""
        self._worker: threading.Thread | None = None
        self._round_trip_s: float | None = None

    @property
    def round_trip_s(self) -> float | None:
        """The latest answered request's round trip (s; None before the first answer)."""
        return self._round_trip_s

    @property
    def healthy(self) -> bool:
        """False after a request failed or was given up on, until an answer comes."""
        return self._healthy

    def connect(self) -> None:
        from takeover.app.policy.client import PolicyUnavailableError

        self._client.connect()
        try:
            health = self._client.health()
        except PolicyUnavailableError as exc:
            self._client.close()
            raise PolicyConnectError(str(exc)) from None
        self.policy_id = health.policy_id
        # An answer later than this is dropped anyway; a shorter wire timeout lets the worker give
        # up, retry and notice a recovered server sooner (and close promptly).
        self._client.set_timeout(max(1.0, self._infer_timeout_s))
        # From here on only the worker thread uses the client's socket.
        self._worker = threading.Thread(target=self._work, name="policy-requests", daemon=True)
        self._worker.start()

    def infer(self, state: np.ndarray, step: int) -> Proposal:
        if self._worker is None:
            raise PolicyUnavailable("the policy connection is not open")
        req = self._pending
        if req is not None and req.done.is_set() and req.given_up:
            # Its answer is for an old state and is dropped; an answer at all says the server is
            # back, so the next request gets the whole budget again.
            self._healthy = not req.error
            req = None
        if req is None:
            req = _Request(np.array(state, dtype=np.float32), int(step), time.monotonic())
            self._pending = req
            self._requests.put(req)
        # A healthy server gets the whole budget; an unhealthy one is only polled, so a dead or
        # hung server costs the loop one wait, not one per period.
        wait = self._infer_timeout_s if self._healthy else 0.0
        if not req.done.wait(wait):
            req.given_up = True
            self._healthy = False
            age_ms = 1000.0 * (time.monotonic() - req.sent_at)
            raise PolicyUnavailable(f"no action chunk from {self.url} for {age_ms:.0f} ms")
        self._pending = None
        if req.error or req.answer is None:
            self._healthy = False
            raise PolicyUnavailable(req.error or f"no action chunk from {self.url}")
        self._healthy = True
        return req.answer

    def _work(self) -> None:
        from takeover.app.policy.client import PolicyUnavailableError

        while True:
            req = self._requests.get()
            if req is None:
                return
            try:
                chunk = self._client.infer(req.state, req.step)
            except PolicyUnavailableError as exc:
                req.error = str(exc)
            else:
                actions = chunk.actions
                actions = actions[: chunk.open_loop_steps] if chunk.open_loop_steps > 0 else actions
                req.answer = Proposal(chunk.step, actions, chunk.extras)
                self.policy_id = chunk.policy_id
                self._round_trip_s = time.monotonic() - req.sent_at
            req.done.set()

    def deploy(self, checkpoint: str, timeout_s: float) -> DeployReply:
        """Ask the server to serve ``checkpoint`` from now on, on a connection of its own (a load
        may take longer than a chunk); the policy id is the new one from here on.
        :class:`~takeover.app.policy.client.PolicyUnavailableError` (or its subclass
        ``PolicyRejectedError``, with the server's reason) if it did not happen."""
        from takeover.app.policy.client import PolicyClient

        with PolicyClient(self.url, timeout_s=timeout_s, keys=self._client.keys) as client:
            reply = client.deploy(checkpoint)
        self.policy_id = reply.policy_id
        return reply

    def close(self) -> None:
        if self._worker is not None:
            self._requests.put(None)
            self._worker.join(timeout=self._client.timeout_s + 0.5)
            self._worker = None
        self._client.close()
