"""The policy client: what the control loop uses to ask a policy server for action chunks.

A REQ socket with send and receive timeouts and no linger. When the server does not answer in
time, the client raises :class:`PolicyUnavailableError` and replaces its socket (a REQ socket that
missed a reply is stuck in its send/receive lockstep), so the next call simply tries again.
:attr:`PolicyClient.policy_id` is the id the server named last (in a health, chunk or deploy
reply), so after :meth:`PolicyClient.deploy` it is the new policy's. Not thread-safe: use one
client per thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import numpy as np

from takeover.app.net import curve
from takeover.app.net.rpc import RequestChannel
from takeover.app.policy.protocol import (
    DEFAULT_ENDPOINT,
    ActionChunkReply,
    Deploy,
    DeployReply,
    Health,
    HealthReply,
    Infer,
)


class PolicyUnavailableError(RuntimeError):
    """No usable answer from the policy server; the loop should hold and may retry."""


class PolicyRejectedError(PolicyUnavailableError):
    """The server answered, but with an error (bad request or a failure inside the policy)."""


@dataclass(frozen=True)
class ActionChunk:
    actions: np.ndarray
    """(H, A) float32 actions, the first one for the step the request was made at."""
    policy_id: str
    step: int
    infer_ms: float
    """Time the server spent in the network."""
    round_trip_ms: float
    """Time from sending the request to decoding the reply, as seen by the client."""
    open_loop_steps: int = 0
    """Actions the server says to execute before asking again (0: the whole chunk)."""
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    """The policy's optional extra outputs (e.g. ``"value"``), float32 arrays by name."""


class PolicyClient:
    """Request/reply connection to a policy server. No I/O until :meth:`connect`."""

    def __init__(
        self, url: str = DEFAULT_ENDPOINT, timeout_s: float = 2.0, keys: curve.ClientKeys | None = None
    ) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.url = url
        self.keys = keys
        """CURVE keys, for a server that requires them (see :mod:`takeover.app.net.curve`)."""
        self.policy_id = ""
        """The id of the policy the server named in its latest reply ('' before the first)."""
        self._channel = RequestChannel(
            url,
            timeout_s,
            keys,
            peer="policy server",
            unavailable=PolicyUnavailableError,
            rejected=PolicyRejectedError,
            timeout_message="no policy server answered at {url} within {timeout:g} s — "
            "start one with `takeover policy serve`",
            refused_message="policy server at {url} refused: {error}",
        )

    @property
    def timeout_s(self) -> float:
        return self._channel.timeout_s

    # -- lifecycle -------------------------------------------------------------------------------

    def connect(self) -> None:
        self._channel.connect()

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- requests --------------------------------------------------------------------------------

    def set_timeout(self, timeout_s: float) -> None:
        """Change how long a request may take (a new socket is made if connected)."""
        self._channel.set_timeout(timeout_s)

    def health(self) -> HealthReply:
        """The server's health reply (``policy_id``, ``uptime_s``, ``horizon``, ...)."""
        reply = self._channel.request(Health(), HealthReply)
        self.policy_id = reply.policy_id
        return reply

    def deploy(self, checkpoint: str) -> DeployReply:
        """Ask the server to serve the checkpoint at ``checkpoint`` (a path on its machine) from
        its next request on; :class:`PolicyRejectedError` with the server's one-line reason if it
        could not (it then keeps serving the policy it had)."""
        reply = self._channel.request(Deploy(checkpoint), DeployReply)
        self.policy_id = reply.policy_id
        return reply

    def infer(self, state: np.ndarray, step: int) -> ActionChunk:
        """Ask for the action chunk for ``state`` at ``step`` of the current attempt."""
        t0 = time.perf_counter()
        reply = self._channel.request(Infer(np.asarray(state, dtype=np.float32), int(step)), ActionChunkReply)
        actions = reply.actions
        if actions.ndim != 2 or actions.dtype.kind != "f" or not np.all(np.isfinite(actions)):
            raise PolicyRejectedError(f"policy server at {self.url} sent a malformed action chunk")
        if reply.step != step or reply.open_loop_steps < 0:
            raise PolicyRejectedError(
                f"policy server at {self.url} answered step {reply.step} (asked {step}) "
                f"with open_loop_steps {reply.open_loop_steps}"
            )
        if not all(v.dtype.kind == "f" for v in reply.extras.values()):
            raise PolicyRejectedError(f"policy server at {self.url} sent extras that are not float arrays")
        self.policy_id = reply.policy_id
        return ActionChunk(
            actions=actions.astype(np.float32, copy=False),
            policy_id=reply.policy_id,
            step=reply.step,
            infer_ms=reply.infer_ms,
            round_trip_ms=(time.perf_counter() - t0) * 1000.0,
            open_loop_steps=reply.open_loop_steps,
            extras={k: v.astype(np.float32, copy=False) for k, v in reply.extras.items()},
        )
