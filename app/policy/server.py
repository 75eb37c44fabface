"""The policy server: a ZeroMQ ROUTER socket answering inference and health requests.

Messages are the typed ones of :mod:`takeover.app.policy.protocol`: ``infer`` (a state and the
step it is for) is answered with an ``action_chunk`` (actions, the policy's id, the step, how
many actions to execute open loop, and the policy's optional extra outputs, among them the value
model's estimate for the state when the checkpoint has one), ``health`` with the
server's figures, ``deploy`` by loading another checkpoint and serving it from the next request
on. Requests are handled one at a time, so every chunk comes whole from one policy: the switch
happens between two requests. A checkpoint that does not load, or is for states or actions of
another size, leaves the serving policy in place and the deploy gets a one-line error. Anything
else (undecodable bytes, an unknown type, wrong or extra fields, wrong shapes, values that are
not finite as float32) is refused as bad input with an error reply that says what was wrong; an
exception inside the policy is answered as a policy failure. The server goes on serving either
way, and replies go back to the connection each request came on, so a peer that does not speak
the protocol cannot cost another client its reply.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from takeover.app.net import curve
from takeover.app.net.rpc import ReplySocket, serve_requests
from takeover.app.net.wire import WireError, error_reply
from takeover.app.policy.protocol import (
    DEFAULT_ENDPOINT,
    VALUE_EXTRA,
    ActionChunkReply,
    Deploy,
    DeployReply,
    Health,
    HealthReply,
    Infer,
    parse_request,
)

log = logging.getLogger(__name__)

MAX_EXTRAS = 16
MAX_ERROR_CHARS = 400
TIMING_WINDOW = 1000
"""Inference times kept for the health reply's mean and p99."""


@dataclass(frozen=True)
class PolicyOutput:
    """What ``predict`` may return instead of a bare chunk: the chunk and named extra outputs."""

    actions: np.ndarray
    """(H, A) actions."""
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)
    """Named float arrays, e.g. ``{"value": (1,)}``; passed through to the client."""


class Predictor(Protocol):
    """What the server needs from a policy (see :class:`takeover.app.policy.model.Policy`)."""

    @property
    def policy_id(self) -> str: ...

    def predict(self, state: np.ndarray) -> np.ndarray | PolicyOutput: ...


class ChunkShape(Protocol):
    horizon: int
    state_dim: int
    action_dim: int


@runtime_checkable
class DeclaresShape(Protocol):
    """Optional capability of a policy: it says the shape of its chunks (a loaded checkpoint does)."""

    @property
    def config(self) -> ChunkShape: ...


@runtime_checkable
class EstimatesValue(Protocol):
    """Optional capability of a policy: it may carry a value model (a ``recap`` checkpoint does);
    ``value_model`` is None when this one has none."""

    @property
    def value_model(self) -> object | None: ...

    def value(self, state: np.ndarray) -> float: ...


@dataclass(frozen=True)
class ServerConfig:
    endpoint: str = DEFAULT_ENDPOINT
    checkpoint: str = ""
    """Checkpoint path or ``package.module:factory`` entry point to load at :meth:`PolicyServer.bind`;
    empty means the shipped default."""
    allow_remote: bool = False
    """Permit binding to an address other than loopback (then CURVE keys are required)."""
    curve_secret_key: str = ""
    """Server secret key file (``.key_secret``); setting it turns CURVE on, on any address."""
    curve_allowed_clients: tuple[str, ...] = ()
    """Client public key files, or directories of ``*.key`` files, that may connect."""
    open_loop_steps: int = 0
    """Actions of each chunk a client should execute open loop (0: the whole chunk)."""
    poll_ms: int = 100
    """How often :meth:`PolicyServer.serve_forever` checks for a stop request."""
    state_dim: int = 39
    """Expected state length when the policy does not say (a loaded checkpoint does)."""

    def __post_init__(self) -> None:
        curve.check_server_security(
            (self.endpoint,), self.allow_remote, self.curve_secret_key, self.curve_allowed_clients
        )
        if not 1 <= self.poll_ms <= 10_000:
            raise ValueError(f"poll_ms must be in 1..10000, got {self.poll_ms}")
        if not 0 <= self.open_loop_steps <= 256:
            raise ValueError(f"open_loop_steps must be in 0..256, got {self.open_loop_steps}")


def check_extras(extras: Any) -> dict[str, np.ndarray]:
    """Extra outputs as ``{name: finite float32 array}``, or ValueError naming what is wrong."""
    if not isinstance(extras, Mapping):
        raise ValueError(f"extras must be a map of name -> array, got {type(extras).__name__}")
    if len(extras) > MAX_EXTRAS:
        raise ValueError(f"{len(extras)} extras, more than {MAX_EXTRAS}")
    out: dict[str, np.ndarray] = {}
    for name, value in extras.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"extra name {name!r} must be a non-empty string")
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"extra {name!r} must be numeric, got dtype {arr.dtype}")
        arr = arr.astype(np.float32)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"extra {name!r} contains NaN or Inf")
        out[name] = arr
    return out


class PolicyServer:
    """Serve one policy on a ROUTER socket. No I/O in the constructor: :meth:`bind` does it.

    ``policy`` may be given directly (any :class:`Predictor`); otherwise the checkpoint named in
    the config (or the shipped default) is loaded by :meth:`bind`.
    """

    def __init__(self, config: ServerConfig | None = None, policy: Predictor | None = None) -> None:
        self.config = config or ServerConfig()
        self._policy = policy
        self._rep: ReplySocket | None = None
        self._stop = threading.Event()
        self._infer_ms: collections.deque[float] = collections.deque(maxlen=TIMING_WINDOW)
        self._t0 = time.monotonic()
        self.endpoint = ""
        """The bound endpoint (with the real port when bound to ``:*`` or ``:0``)."""
        self.served = 0
        self.errors = 0
        self.deployed = 0
        """Checkpoints loaded by ``deploy`` requests since the start."""

    @property
    def policy(self) -> Predictor:
        if self._policy is None:
            raise RuntimeError("no policy loaded: call bind() first")
        return self._policy

    def bind(self) -> str:
        """Load the policy (if not given) and bind the socket; return the bound endpoint."""
        if self._rep is not None:
            return self.endpoint
        keys = curve.load_server_keys(self.config.curve_secret_key, self.config.curve_allowed_clients)
        if self._policy is None:
            from takeover.app.policy import default_checkpoint_path
            from takeover.app.policy.loader import load_policy_from

            self._policy = load_policy_from(self.config.checkpoint or default_checkpoint_path())
        self._rep = ReplySocket.bind(self.config.endpoint, keys, "policy server")
        self.endpoint = self._rep.endpoint
        self._t0 = time.monotonic()
        log.info("policy %s serving on %s", self._policy.policy_id, self.endpoint)
        return self.endpoint

    def serve_forever(self) -> None:
        """Answer requests until :meth:`stop` is called (checked every ``poll_ms``)."""
        self.bind()
        assert self._rep is not None
        sock = self._rep.sock
        serve_requests(sock, self.handle, self._stop, self.config.poll_ms)

    def handle(self, frames: list[bytes]) -> bytes:
        """One request's frames -> the encoded reply."""
        try:
            request = parse_request(frames, self._state_dim())
        except WireError as exc:
            self.errors += 1
            return error_reply(str(exc))
        if isinstance(request, Infer):
            return self._infer(request)
        if isinstance(request, Deploy):
            return self._deploy(request)
        assert isinstance(request, Health)
        return self._health()

    def _state_dim(self) -> int:
        policy = self.policy
        return policy.config.state_dim if isinstance(policy, DeclaresShape) else self.config.state_dim

    def _deploy(self, request: Deploy) -> bytes:
        """Load the checkpoint and serve it from the next request on; on any failure keep serving
        the current policy and say why in one line."""
        from takeover.app.policy.loader import PolicyLoadError, is_entry_point, load_policy_from

        old = self.policy
        if is_entry_point(request.checkpoint):
            refusal = f"{request.checkpoint!r} is not a checkpoint file (a deploy never runs code)"
        else:
            try:
                new = load_policy_from(request.checkpoint)
                refusal = self._shape_refusal(new)
            except (PolicyLoadError, OSError) as exc:
                refusal = str(exc)
        if refusal:
            self.errors += 1
            text = " ".join(f"cannot deploy: {refusal}; still serving {old.policy_id}".split())
            log.warning("%s", text)
            return error_reply(text[:MAX_ERROR_CHARS])
        self._policy = new  # one reference: the next request is answered by the new policy
        self.deployed += 1
        log.info("deployed policy %s (was %s) from %s", new.policy_id, old.policy_id, request.checkpoint)
        return DeployReply(policy_id=new.policy_id, previous_policy_id=old.policy_id).encode()

    def _shape_refusal(self, new: Predictor) -> str:
        """Why ``new`` cannot replace the serving policy ('' if it can): clients send states and
        execute actions of the serving policy's sizes."""
        old = self.policy
        if not isinstance(new, DeclaresShape):
            return ""
        state_dim = old.config.state_dim if isinstance(old, DeclaresShape) else self.config.state_dim
        want = (state_dim, old.config.action_dim if isinstance(old, DeclaresShape) else None)
        got = (new.config.state_dim, new.config.action_dim)
        if got[0] != want[0] or (want[1] is not None and got[1] != want[1]):
            return (
                f"the checkpoint takes states of {got[0]} and gives actions of {got[1]}, "
                f"the serving policy {want[0]} and {want[1] if want[1] is not None else 'any'}"
            )
        return ""

    def _health(self) -> bytes:
        policy = self.policy
        shape = policy.config if isinstance(policy, DeclaresShape) else None
        times = np.asarray(self._infer_ms, dtype=np.float64)
        return HealthReply(
            policy_id=policy.policy_id,
            uptime_s=time.monotonic() - self._t0,
            served=self.served,
            errors=self.errors,
            open_loop_steps=self.config.open_loop_steps,
            infer_ms_mean=float(times.mean()) if times.size else 0.0,
            infer_ms_p99=float(np.percentile(times, 99)) if times.size else 0.0,
            horizon=shape.horizon if shape else None,
            state_dim=shape.state_dim if shape else None,
            action_dim=shape.action_dim if shape else None,
        ).encode()

    def _infer(self, request: Infer) -> bytes:
        t0 = time.perf_counter()
        policy = self.policy  # the id in the reply is that of the policy that made the chunk
        try:
            out = policy.predict(request.state)
            raw, raw_extras = (out.actions, out.extras) if isinstance(out, PolicyOutput) else (out, {})
            actions = np.asarray(raw, dtype=np.float32)
            if (
                isinstance(policy, EstimatesValue)
                and policy.value_model is not None
                and VALUE_EXTRA not in raw_extras
            ):  # a checkpoint with a value model: its estimate travels with the chunk
                estimate = np.array([policy.value(request.state)], dtype=np.float32)
                raw_extras = {**raw_extras, VALUE_EXTRA: estimate}
        except Exception as exc:
            self.errors += 1
            log.exception("policy raised on step %d", request.step)
            return error_reply(f"policy failed: {type(exc).__name__}: {exc}")
        infer_ms = (time.perf_counter() - t0) * 1000.0
        if actions.ndim != 2 or not np.all(np.isfinite(actions)):
            self.errors += 1
            return error_reply(
                f"policy produced an invalid chunk (shape {actions.shape} or non-finite values)"
            )
        try:
            extras = check_extras(raw_extras)
        except ValueError as exc:
            self.errors += 1
            return error_reply(f"policy produced invalid extras: {exc}")
        self.served += 1
        self._infer_ms.append(infer_ms)
        return ActionChunkReply(
            actions=actions,
            policy_id=policy.policy_id,
            infer_ms=infer_ms,
            step=request.step,
            open_loop_steps=self.config.open_loop_steps,
            extras=extras,
        ).encode()

    def stop(self) -> None:
        """Ask :meth:`serve_forever` to return (safe from any thread or a signal handler)."""
        self._stop.set()

    def close(self) -> None:
        """Free the socket. Call it after :meth:`serve_forever` has returned (same thread or joined)."""
        self.stop()
        rep, self._rep = self._rep, None
        if rep is not None:
            rep.close()

    def __enter__(self) -> PolicyServer:
        self.bind()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
