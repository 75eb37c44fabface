"""The engine process behind the operator console.

It owns the control loop and everything the loop talks to; views (the GUI) only see it
through two ZeroMQ sockets (:mod:`takeover.app.engine.sockets`, bound under the servers' bind
policy): a PUB socket with :class:`Status` snapshots and a ROUTER socket taking
:class:`Command` messages. The console's process can stall, be slow or crash without
touching the loop's timing.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from pathlib import Path

import numpy as np
import zmq

from takeover.app.control.loop import AttemptRefused
from takeover.app.engine.protocol import (
    MAX_COMMAND_BYTES,
    MAX_FRAME_HEIGHT,
    AttachReply,
    Command,
    CommandName,
    CommandReply,
    Frame,
)
from takeover.app.engine.sockets import EngineEndpoints, EngineSockets
from takeover.app.engine.status import StatusBoard
from takeover.app.engine.viewers import ViewerSlot
from takeover.app.net import wire
from takeover.app.net.children import ParentLink
from takeover.app.net.rpc import serve_requests
from takeover.app.runtime.compose import Runtime
from takeover.app.runtime.config import AppConfig
from takeover.app.runtime.config_file import config_text
from takeover.app.runtime.seeds import SeedSource
from takeover.recorder.capture import LiveFrames
from takeover.storage.schema import Event, EventKind
from takeover.teleop.state_machine import Request

log = logging.getLogger(__name__)

STATUS_HZ = 15.0
_REQUESTS = {
    CommandName.TAKEOVER: Request.TAKEOVER,
    CommandName.HANDBACK: Request.HANDBACK,
    CommandName.HOLD: Request.HOLD,
    CommandName.RESUME: Request.RESUME,
    CommandName.ESTOP: Request.ESTOP,
    CommandName.RESET_ESTOP: Request.RESET,
}


class Engine:
    def __init__(
        self, config: AppConfig, endpoints: EngineEndpoints, parent: ParentLink | None = None
    ) -> None:
        """``parent``: the link to the process that started the engine (the console). The bound
        endpoints are reported on it, and when that process goes the attempt is stopped and saved and
        the engine exits (an orphaned engine must not keep driving a robot). Without it the engine
        owns itself (started on its own, to be attached to)."""
        self.parent = parent
        self.config = config
        self.endpoints = endpoints
        self.board = StatusBoard()
        self._quit = threading.Event()
        self._start = threading.Event()
        self._runtime: Runtime | None = None
        self._live: LiveFrames | None = None
        """Every camera's newest frame (the runtime's), published on the frame socket."""
        self._sockets: EngineSockets | None = None
        self.viewers = ViewerSlot()
        """The console attached to the engine: at most one drives it (see viewers.py)."""
        self._config_text = ""
        """The configuration as TOML, for consoles that attach (made at the first ATTACH)."""

    def bind(self) -> tuple[str, str]:
        """Bind the status and command sockets (OSError, or CurveKeyError for unusable keys);
        return the endpoints actually bound. :meth:`run` binds them if this was not called."""
        if self._sockets is None:
            self._sockets = EngineSockets(self.endpoints).bind()
            self.board.update(frames=self._sockets.frames_endpoint)
            self._report(self._sockets.status_endpoint, self._sockets.command_endpoint)
        return self._sockets.status_endpoint, self._sockets.command_endpoint

    def run(self) -> int:
        if self.parent is not None:
            self.parent.on_gone(self._parent_gone)
        self.bind()
        sockets = self._sockets
        assert sockets is not None and sockets.status is not None and sockets.command is not None
        assert sockets.frames is not None
        threads = [
            threading.Thread(
                target=self._publish_frames, args=(sockets.frames,), name="engine-frames", daemon=True
            ),
            threading.Thread(target=self._publish, args=(sockets.status,), name="engine-status", daemon=True),
            threading.Thread(
                target=self._serve_commands, args=(sockets.command,), name="engine-commands", daemon=True
            ),
        ]
        for t in threads:
            t.start()
        try:
            runtime = Runtime(self.config, extra_observers=[self.board])
            self._live = runtime.live  # frames flow as soon as the station renders (the scene first)
            with runtime as rt:
                self._runtime = rt
                if rt.recorder is not None:
                    self.board.watch_recorder(rt.recorder)
                self.board.previews = rt.previews.previews
                assert rt.store is not None
                rt.store.require_writable("record attempts")  # say so now, not at the first Start
                seeds = SeedSource(self.config.seeds, rt.store)  # never the same scenes each session
                self.board.update(message="ready: press Start episode")
                while not self._quit.is_set():
                    if not self._start.wait(timeout=0.1):
                        continue
                    self._start.clear()
                    assert rt.loop is not None
                    try:
                        rt.loop.run_episode(seed=seeds.next())
                    except AttemptRefused as exc:  # raced past the check at the command
                        self.board.update(message=f"cannot start: {exc}")
                        continue
        except Exception as exc:
            log.exception("engine failed")
            self.board.update(message=f"error: {exc}", mode="HOLD")
            time.sleep(1.0)  # let the console show why
            return 1
        finally:
            self._quit.set()
            for t in threads:
                t.join(timeout=2)
            bound = (sockets.status_endpoint, sockets.command_endpoint, sockets.frames_endpoint)
            sockets.close()
            self._sockets = None
            _remove_socket_files(bound)
        return 0

    # -- threads ------------------------------------------------------------------------
    def _publish(self, sock: zmq.Socket[bytes]) -> None:
        period = 1.0 / STATUS_HZ
        while not self._quit.wait(period):
            sock.send(self.board.publishable().encode())

    def _publish_frames(self, sock: zmq.Socket[bytes]) -> None:
        """Every camera's frames at the camera rate, each as soon as it is there (a console that
        falls behind skips frames: the socket's queue is short and a full one drops)."""
        seen: dict[str, int] = {}
        while not self._quit.is_set():
            live = self._live
            if live is None:
                self._quit.wait(0.05)
                continue
            for frame in live.wait_newer(seen, 0.1):
                seen[frame.camera] = frame.seq
                stride = max(1, -(-frame.image.shape[0] // MAX_FRAME_HEIGHT))
                image = np.ascontiguousarray(frame.image[::stride, ::stride])
                with contextlib.suppress(zmq.Again):
                    sock.send(Frame(frame.camera, frame.seq, frame.t, image).encode(), zmq.NOBLOCK)

    def _serve_commands(self, sock: zmq.Socket[bytes]) -> None:
        serve_requests(sock, self._answer, self._quit, 100, on_idle=self._show_viewer)

    def _answer(self, frames: list[bytes]) -> bytes:
        """One command's frames -> the encoded reply (an error reply says why it was refused)."""
        if len(frames) != 1:
            return wire.error_reply(f"expected a single-part message, got {len(frames)} parts")
        try:
            cmd = Command.decode(frames[0], MAX_COMMAND_BYTES)
        except wire.WireError as exc:
            return wire.error_reply(str(exc))
        if cmd.name in (CommandName.ATTACH, CommandName.DETACH):
            return self._viewer_command(cmd)
        refused = self.viewers.refusal(cmd) or self._handle(cmd)
        return wire.error_reply(refused) if refused else CommandReply().encode()

    # -- the attached console -----------------------------------------------------------
    def _viewer_command(self, cmd: Command) -> bytes:
        """ATTACH (claim or renew; answered with what a console needs) or DETACH (let go: the
        engine and its attempt keep running)."""
        if cmd.name is CommandName.DETACH:
            refused = self.viewers.detach(cmd.viewer)
            self._show_viewer()
            return wire.error_reply(refused) if refused else CommandReply().encode()
        granted = self.viewers.attach(cmd.viewer)
        self._show_viewer()
        status = self._sockets.status_endpoint if self._sockets is not None else ""
        if not self._config_text:
            self._config_text = config_text(self.config)
        return AttachReply(granted, self.viewers.holder(), status, self._config_text).encode()

    def _show_viewer(self) -> None:
        """Publish which console is attached, and say so when that changes."""
        holder, shown = self.viewers.holder(), self.board.snapshot().viewer
        if holder == shown:
            return
        if holder:  # shown by the status's viewer; the message stays what the operator needs
            self.board.update(viewer=holder)
        else:
            self.board.update(viewer="", message=f"console detached ({shown}); the engine keeps running")

    # -- the process around it ----------------------------------------------------------
    def _report(self, status: str, command: str) -> None:
        """Say where the sockets listen (the real port for ``:0``) to whoever needs it."""
        if self.parent is not None:
            self.parent.report(status=status, command=command)
        else:  # started on its own: whoever attaches needs to know
            print(f"engine: status on {status}, commands on {command}", file=sys.stderr)
            print(
                f"engine: attach a console with `takeover console --attach {command}`",
                file=sys.stderr,
                flush=True,
            )

    def _parent_gone(self) -> None:
        log.warning("the process that started the engine went away: stopping")
        self._handle(Command(CommandName.QUIT))

    def _handle(self, cmd: Command) -> str:
        """Apply a command; return '' or a reason it was refused."""
        rt = self._runtime
        if cmd.name is CommandName.QUIT:
            if rt is not None and rt.loop is not None:
                rt.loop.control.request_stop(outcome="")
            self._quit.set()
            return ""
        if rt is None or rt.loop is None:
            return "the engine is still starting"
        loop = rt.loop
        active = self.board.snapshot().episode_active
        if cmd.name is CommandName.START_EPISODE:
            if active:
                return "an episode is already running"
            refusal = loop.start_refusal()
            if refusal:
                self.board.update(message=f"cannot start: {refusal}")
                return refusal
            self._start.set()
        elif cmd.name is CommandName.STOP_EPISODE:
            if not active:
                return "no episode is running"
            loop.control.request_stop(outcome=cmd.outcome)
        elif cmd.name is CommandName.DISCARD_EPISODE:
            if not active:
                return "no episode is running"
            loop.control.request_stop(discard=True)
        elif cmd.name is CommandName.KEYS:
            if rt.keyboard is not None:
                rt.keyboard.set_keys(cmd.keys, time.monotonic())
        else:
            loop.request(_REQUESTS[cmd.name], reason="console")
            if not active and cmd.name in (CommandName.ESTOP, CommandName.RESET_ESTOP):
                # Nothing consumes requests between attempts: it takes effect (and is recorded)
                # at the first period of the next attempt; the console shows it from now on.
                estop = cmd.name is CommandName.ESTOP
                self.board.on_event(
                    Event(EventKind.ESTOP if estop else EventKind.RESET, 0, time.monotonic(), "console")
                )
                self.board.update(mode="ESTOP" if estop else "IDLE")
        return ""


def _remove_socket_files(endpoints: tuple[str, ...]) -> None:
    """libzmq leaves the files of closed ipc:// sockets behind; whoever binds removes them."""
    for endpoint in endpoints:
        if endpoint.startswith("ipc://"):
            Path(endpoint.removeprefix("ipc://")).unlink(missing_ok=True)
