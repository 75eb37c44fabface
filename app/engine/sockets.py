"""The engine's two endpoints, bound under the same policy as the station and policy servers.

The status socket (PUB) shows the robot, the frame socket (PUB) its cameras, and the command
socket (ROUTER) drives it, so all keep
to loopback (or ``ipc://``) unless remote serving is allowed, and then both need CURVE: a
console must hold a key on the engine's allow-list to see or command anything. Commands are
small, and the sockets refuse larger messages by dropping that peer.
"""

from __future__ import annotations

from dataclasses import dataclass

import zmq
from zmq.auth.thread import ThreadAuthenticator

from takeover.app.engine.protocol import MAX_COMMAND_BYTES
from takeover.app.net import curve
from takeover.app.net.rpc import Context, bind_socket

MAX_SUBSCRIPTION_BYTES = 1024
"""What a status or frame subscriber may send (its subscriptions): a few bytes."""
FRAMES_HWM = 8
"""Frames queued per console at most: a console that cannot keep up skips frames, never lags."""


@dataclass(frozen=True)
class EngineEndpoints:
    status: str
    """Where the engine publishes its status, e.g. ``tcp://127.0.0.1:0`` or ``ipc:///run/x/status``."""
    command: str
    """Where the engine takes commands."""
    allow_remote: bool = False
    """Permit addresses other than loopback (then CURVE keys are required)."""
    curve_secret_key: str = ""
    """The engine's secret key file (``.key_secret``); setting it turns CURVE on for both sockets."""
    curve_allowed_clients: tuple[str, ...] = ()
    """Console public key files, or directories of ``*.key`` files, that may connect."""

    frames: str = ""
    """Where the engine publishes camera frames; '' derives it from ``status`` (the same host on a
    port of its own, or the status socket's path with ``.frames`` appended)."""

    def __post_init__(self) -> None:
        curve.check_server_security(
            (self.status, self.command, self.frames_endpoint),
            self.allow_remote,
            self.curve_secret_key,
            self.curve_allowed_clients,
        )

    @property
    def frames_endpoint(self) -> str:
        if self.frames:
            return self.frames
        if self.status.startswith("ipc://"):
            return self.status + ".frames"
        head, _, _port = self.status.rpartition(":")
        return f"{head}:0"


class EngineSockets:
    """The bound status and command sockets, their context and (for CURVE) its authenticator.
    :meth:`bind` binds both or neither; :meth:`close` after the threads using them have ended."""

    def __init__(self, endpoints: EngineEndpoints) -> None:
        self.endpoints = endpoints
        self._ctx: Context | None = None
        self.status: zmq.Socket[bytes] | None = None
        self.command: zmq.Socket[bytes] | None = None
        self.frames: zmq.Socket[bytes] | None = None
        self.frames_endpoint = ""
        """Where camera frames are published (bound)."""
        self.status_endpoint = ""
        self.command_endpoint = ""
        """The endpoints actually bound (with the port the system chose for ``:0``)."""
        self._auth: ThreadAuthenticator | None = None

    def bind(self) -> EngineSockets:
        e = self.endpoints
        keys = curve.load_server_keys(e.curve_secret_key, e.curve_allowed_clients)
        self._ctx = ctx = zmq.Context()
        try:
            if keys is not None:
                self._auth = curve.start_authenticator(ctx, keys)
            self.status, self.status_endpoint = bind_socket(
                ctx, zmq.PUB, e.status, keys, "engine status socket", MAX_SUBSCRIPTION_BYTES
            )
            self.status.setsockopt(zmq.SNDHWM, 4)
            self.command, self.command_endpoint = bind_socket(
                ctx, zmq.ROUTER, e.command, keys, "engine command socket", MAX_COMMAND_BYTES
            )
            self.frames, self.frames_endpoint = bind_socket(
                ctx, zmq.PUB, e.frames_endpoint, keys, "engine frame socket", MAX_SUBSCRIPTION_BYTES
            )
            self.frames.setsockopt(zmq.SNDHWM, FRAMES_HWM)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for sock in (self.status, self.command, self.frames):
            if sock is not None:
                sock.close(0)
        self.status = self.command = self.frames = None
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            ctx.term()
