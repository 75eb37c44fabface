"""The engine process behind the operator console.

It owns the control loop and everything the loop talks to; views (the GUI) only see it
through two ZeroMQ sockets (:mod:`takeover.app.engine.sockets`, bound under the servers' bind
policy): a PUB socket with :class:`Status` snapshots and a ROUTER socket taking
:class:`Command` messages. The console's process can stall, be slow or crash without
touching the loop's timing.
"""

from __future__ import annotations

import logging
import os
import threading
import time

import zmq

from takeover.app.engine.protocol import MAX_COMMAND_BYTES, Command, CommandName, CommandReply
from takeover.app.engine.sockets import EngineEndpoints, EngineSockets
from takeover.app.engine.status import StatusBoard
from takeover.app.net import wire
from takeover.app.net.rpc import serve_requests
from takeover.app.runtime.compose import Runtime
from takeover.app.runtime.config import AppConfig
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
    def __init__(self, config: AppConfig, endpoints: EngineEndpoints, parent_pid: int | None = None) -> None:
        """``parent_pid``: the console's process; if it goes away, the attempt is stopped and saved
        and the engine exits (an orphaned engine must not keep driving a robot)."""
        self.parent_pid = parent_pid
        self.config = config
        self.endpoints = endpoints
        self.board = StatusBoard()
        self._quit = threading.Event()
        self._start = threading.Event()
        self._runtime: Runtime | None = None
        self._sockets: EngineSockets | None = None

    def bind(self) -> tuple[str, str]:
        """Bind the status and command sockets (OSError, or CurveKeyError for unusable keys);
        return the endpoints actually bound. :meth:`run` binds them if this was not called."""
        if self._sockets is None:
            self._sockets = EngineSockets(self.endpoints).bind()
        return self._sockets.status_endpoint, self._sockets.command_endpoint

    def run(self) -> int:
        self.bind()
        sockets = self._sockets
        assert sockets is not None and sockets.status is not None and sockets.command is not None
        threads = [
            threading.Thread(target=self._publish, args=(sockets.status,), name="engine-status", daemon=True),
            threading.Thread(
                target=self._serve_commands, args=(sockets.command,), name="engine-commands", daemon=True
            ),
        ]
        for t in threads:
            t.start()
        try:
            with Runtime(self.config, extra_observers=[self.board]) as rt:
                self._runtime = rt
                if rt.recorder is not None:
                    self.board.dropped_frames = rt.recorder.dropped_frames
                self.board.previews = rt.previews.previews
                self.board.update(message="ready: press Start episode")
                seed = 0
                while not self._quit.is_set():
                    if not self._start.wait(timeout=0.1):
                        continue
                    self._start.clear()
                    assert rt.loop is not None
                    rt.loop.run_episode(seed=seed)
                    seed += 1
        except Exception as exc:
            log.exception("engine failed")
            self.board.update(message=f"error: {exc}", mode="HOLD")
            time.sleep(1.0)  # let the console show why
            return 1
        finally:
            self._quit.set()
            for t in threads:
                t.join(timeout=2)
            sockets.close()
            self._sockets = None
        return 0

    # -- threads ------------------------------------------------------------------------
    def _publish(self, sock: zmq.Socket[bytes]) -> None:
        period = 1.0 / STATUS_HZ
        while not self._quit.wait(period):
            sock.send(self.board.publishable().encode())

    def _serve_commands(self, sock: zmq.Socket[bytes]) -> None:
        serve_requests(sock, self._answer, self._quit, 100, on_idle=self._check_parent)

    def _answer(self, frames: list[bytes]) -> bytes:
        """One command's frames -> the encoded reply (an error reply says why it was refused)."""
        if len(frames) != 1:
            return wire.error_reply(f"expected a single-part message, got {len(frames)} parts")
        try:
            cmd = Command.decode(frames[0], MAX_COMMAND_BYTES)
        except wire.WireError as exc:
            return wire.error_reply(str(exc))
        refused = self._handle(cmd)
        return wire.error_reply(refused) if refused else CommandReply().encode()

    def _check_parent(self) -> None:
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            log.warning("the console (pid %d) went away: stopping", self.parent_pid)
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
