"""The policy server: a ZeroMQ REP socket answering inference and health requests.

Messages use :mod:`takeover.app.net.wire` (msgpack, explicit numpy encoding, no pickle):

- ``{"type": "infer", "state": <(S,) float array>, "step": <int >= 0>}`` ->
  ``{"type": "action_chunk", "ok": true, "actions": <(H, A) float32>, "policy_id": str,
  "infer_ms": float, "step": int, "open_loop_steps": int, "extras": {name: float32 array}}``
- ``{"type": "health"}`` -> ``{"type": "health", "ok": true, "policy_id": str, "uptime_s": float,
  "horizon": int, "state_dim": int, "action_dim": int, "open_loop_steps": int, "served": int,
  "errors": int, "infer_ms_mean": float, "infer_ms_p99": float}``

``open_loop_steps`` is how many actions of each chunk a client should execute before asking
again (0: the whole chunk). ``extras`` are the policy's optional extra outputs (a value estimate,
a world model's prediction...), passed through for the recorder.

Anything else (undecodable bytes, unknown type, wrong field types or shapes, non-finite values, an
exception inside the policy) is answered with ``{"type": "error", "ok": false, "error": <reason>}``
and the server goes on serving: a REP socket must answer every request it receives.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from takeover.app.net import curve
from takeover.app.net.rpc import ReplySocket, serve_requests
from takeover.app.net.wire import WireError, decode, encode, error_reply

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
MAX_REQUEST_BYTES = 1024 * 1024
"""Infer and health requests are small; anything bigger is refused before decoding."""
MAX_EXTRAS = 16
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
        if bool(self.curve_secret_key) != bool(self.curve_allowed_clients):
            raise ValueError("CURVE needs both a server secret key and at least one allowed client key")
        curve.check_bind_policy(self.endpoint, self.allow_remote, bool(self.curve_secret_key))
        if not 1 <= self.poll_ms <= 10_000:
            raise ValueError(f"poll_ms must be in 1..10000, got {self.poll_ms}")
        if not 0 <= self.open_loop_steps <= 256:
            raise ValueError(f"open_loop_steps must be in 0..256, got {self.open_loop_steps}")


class RequestError(ValueError):
    """A request that does not follow the schema; the message is sent back to the client."""


def parse_infer(msg: dict[str, Any], state_dim: int) -> tuple[np.ndarray, int]:
    """Validate an ``infer`` request and return ``(state as float32, step)``."""
    state = msg.get("state")
    if not isinstance(state, np.ndarray):
        raise RequestError(f"'state' must be a numpy array, got {type(state).__name__}")
    if state.dtype.kind not in "iuf":
        raise RequestError(f"'state' must be numeric, got dtype {state.dtype}")
    if state.shape != (state_dim,):
        raise RequestError(f"'state' must have shape ({state_dim},), got {state.shape}")
    if not np.all(np.isfinite(state)):
        raise RequestError("'state' contains NaN or Inf")
    step = msg.get("step", 0)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise RequestError(f"'step' must be a non-negative integer, got {step!r}")
    return state.astype(np.float32), step


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
    """Serve one policy on a REP socket. No I/O in the constructor: :meth:`bind` does it.

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

    @property
    def policy(self) -> Predictor:
        if self._policy is None:
            raise RuntimeError("no policy loaded: call bind() first")
        return self._policy

    def bind(self) -> str:
        """Load the policy (if not given) and bind the socket; return the bound endpoint."""
        if self._rep is not None:
            return self.endpoint
        keys = None
        if self.config.curve_secret_key:
            keys = curve.ServerKeys.load(self.config.curve_secret_key, self.config.curve_allowed_clients)
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
            if len(frames) != 1:
                raise RequestError(f"expected a single-part message, got {len(frames)} parts")
            if len(frames[0]) > MAX_REQUEST_BYTES:
                raise RequestError(
                    f"request of {len(frames[0])} bytes exceeds the server's limit of {MAX_REQUEST_BYTES}"
                )
            msg = decode(frames[0])
            kind = msg["type"]
            if kind == "health":
                return self._health()
            if kind == "infer":
                return self._infer(msg)
            raise RequestError(f"unknown request type {kind!r}; expected 'infer' or 'health'")
        except (WireError, RequestError) as exc:
            self.errors += 1
            return error_reply(str(exc))

    def _health(self) -> bytes:
        policy = self.policy
        extra: dict[str, Any] = {}
        cfg = getattr(policy, "config", None)
        if cfg is not None:
            extra = {"horizon": cfg.horizon, "state_dim": cfg.state_dim, "action_dim": cfg.action_dim}
        times = np.asarray(self._infer_ms, dtype=np.float64)
        return encode(
            {
                "type": "health",
                "ok": True,
                "policy_id": policy.policy_id,
                "uptime_s": time.monotonic() - self._t0,
                "served": self.served,
                "errors": self.errors,
                "open_loop_steps": self.config.open_loop_steps,
                "infer_ms_mean": float(times.mean()) if times.size else 0.0,
                "infer_ms_p99": float(np.percentile(times, 99)) if times.size else 0.0,
                **extra,
            }
        )

    def _infer(self, msg: dict[str, Any]) -> bytes:
        cfg = getattr(self.policy, "config", None)
        state, step = parse_infer(msg, int(getattr(cfg, "state_dim", self.config.state_dim)))
        t0 = time.perf_counter()
        try:
            out = self.policy.predict(state)
            raw, raw_extras = (out.actions, out.extras) if isinstance(out, PolicyOutput) else (out, {})
            actions = np.asarray(raw, dtype=np.float32)
        except Exception as exc:
            self.errors += 1
            log.exception("policy raised on step %d", step)
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
        return encode(
            {
                "type": "action_chunk",
                "ok": True,
                "actions": actions,
                "policy_id": self.policy.policy_id,
                "infer_ms": infer_ms,
                "step": step,
                "open_loop_steps": self.config.open_loop_steps,
                "extras": extras,
            }
        )

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
