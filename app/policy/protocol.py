"""The policy protocol: what a policy server and its clients exchange over ZeroMQ.

Each message is a frozen dataclass (:mod:`takeover.app.net.messages`), checked exactly (types and
keys) on arrival. Requests: :class:`Infer` (an action chunk for a state at a step),
:class:`Health` and :class:`Deploy` (serve another checkpoint from now on). Replies:
:class:`ActionChunkReply`, :class:`HealthReply`, :class:`DeployReply`, or the envelope's error
reply. Policy requests never move the robot, so they carry no sequence number: a client
may simply ask again. See docs/policy.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from takeover.app.net.messages import MessageTable, Reply, Request
from takeover.app.net.wire import WireError

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
MAX_REQUEST_BYTES = 1024 * 1024
"""Infer and health requests are small; anything bigger is refused before decoding."""
MAX_STEP = 2**63 - 1
MAX_PATH_CHARS = 4096
VALUE_EXTRA = "value"
"""The extra output that carries the value model's estimate for the state, as a (1,) float32 array
(recorded as the episode stream ``policy.value``)."""


class RequestError(WireError):
    """A request that does not follow the schema; the message is sent back to the client."""


@dataclass(frozen=True)
class Infer(Request):
    TYPE: ClassVar[str] = "infer"
    state: np.ndarray
    """(state_dim,) float state; sent as float32."""
    step: int
    """The step of the current attempt the chunk is asked for (>= 0); echoed in the reply."""

    def __post_init__(self) -> None:
        if not 0 <= self.step <= MAX_STEP:
            raise ValueError(f"'step' must be a non-negative integer, got {self.step}")


@dataclass(frozen=True)
class Health(Request):
    TYPE: ClassVar[str] = "health"


@dataclass(frozen=True)
class Deploy(Request):
    """Serve the checkpoint at ``checkpoint`` (a path on the server's machine) from the next request
    on. Checkpoint files only: a request never names code to run (no ``module:factory``)."""

    TYPE: ClassVar[str] = "deploy"
    checkpoint: str

    def __post_init__(self) -> None:
        if not 0 < len(self.checkpoint) <= MAX_PATH_CHARS or not self.checkpoint.isprintable():
            raise ValueError(f"'checkpoint' must be a path of 1 to {MAX_PATH_CHARS} printable characters")


REQUESTS = MessageTable[Request]([Infer, Health, Deploy])


@dataclass(frozen=True)
class ActionChunkReply(Reply):
    TYPE: ClassVar[str] = "action_chunk"
    actions: np.ndarray
    """(H, A) float32 actions, the first one for ``step``."""
    policy_id: str
    infer_ms: float
    """Time the server spent in the network."""
    step: int
    open_loop_steps: int
    """Actions of the chunk a client should execute before asking again (0: the whole chunk)."""
    extras: dict[str, np.ndarray]
    """The policy's optional extra outputs (a world model's prediction...). A checkpoint with a
    value model adds its estimate for the state as :data:`VALUE_EXTRA` (absent without one)."""


@dataclass(frozen=True)
class HealthReply(Reply):
    TYPE: ClassVar[str] = "health"
    policy_id: str
    uptime_s: float
    served: int
    errors: int
    open_loop_steps: int
    infer_ms_mean: float
    infer_ms_p99: float
    horizon: int | None = None
    """Actions per chunk, state and action sizes: nil when the policy does not declare them."""
    state_dim: int | None = None
    action_dim: int | None = None


@dataclass(frozen=True)
class DeployReply(Reply):
    """The checkpoint is loaded and serves every request from now on."""

    TYPE: ClassVar[str] = "deployed"
    policy_id: str
    """The id of the policy now serving."""
    previous_policy_id: str
    """The id of the policy it replaced."""


def parse_request(frames: list[bytes], state_dim: int) -> Request:
    """One request's frames checked against the protocol; an ``infer`` state comes back as finite
    native float32 of shape ``(state_dim,)``."""
    if len(frames) != 1:
        raise RequestError(f"expected a single-part message, got {len(frames)} parts")
    if len(frames[0]) > MAX_REQUEST_BYTES:
        raise RequestError(
            f"request of {len(frames[0])} bytes exceeds the server's limit of {MAX_REQUEST_BYTES}"
        )
    request = REQUESTS.decode(frames[0], MAX_REQUEST_BYTES)
    if isinstance(request, Infer):
        return Infer(check_state(request.state, state_dim), request.step)
    return request


def check_state(state: np.ndarray, state_dim: int) -> np.ndarray:
    """A state as native float32, finite after the cast (1e300 as float64 is inf as float32)."""
    if state.dtype.kind != "f":
        raise RequestError(f"'state' must be a float array, got dtype {state.dtype}")
    if state.shape != (state_dim,):
        raise RequestError(f"'state' must have shape ({state_dim},), got {state.shape}")
    with np.errstate(over="ignore"):
        out = state.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(out))
    if bad.size:
        i = int(bad[0])
        raise RequestError(
            f"'state' is not a finite float32 at index {i} ({float(state[i]):g}); send values within float32"
        )
    return out
