"""The engine process behind the operator console.

It owns the control loop and everything the loop talks to; views (the GUI) only see it
through two ZeroMQ sockets (:mod:`takeover.app.engine.sockets`, bound under the servers' bind
policy): a PUB socket with :class:`Status` snapshots and a ROUTER socket taking
:class:`Command` messages. The console's process can stall, be slow or crash without
touching the loop's timing.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np
import zmq

from takeover.app.control.arbitration import EVENTS
from takeover.app.control.loop import NOT_RUNNING, AttemptRefused, ControlLoop
from takeover.app.engine import registry
from takeover.app.engine.health import HealthMonitor
from takeover.app.engine.protocol import (
    MAX_COMMAND_BYTES,
    MAX_FRAME_HEIGHT,
    AttachReply,
    Command,
    CommandName,
    CommandReply,
    Frame,
    StartProblem,
    Status,
)
from takeover.app.engine.sockets import EngineEndpoints, EngineSockets
from takeover.app.engine.status import SessionTally, StatusBoard, attempt_clock, operator_label
from takeover.app.engine.viewers import ViewerSlot
from takeover.app.net import wire
from takeover.app.net.children import ParentLink
from takeover.app.net.rpc import serve_requests
from takeover.app.runtime.compose import Runtime
from takeover.app.runtime.config import AppConfig
from takeover.app.runtime.config_file import config_text
from takeover.app.runtime.seeds import SeedSource
from takeover.app.station.base import RendersOffLoop
from takeover.recorder.capture import LiveFrames
from takeover.storage.schema import Event
from takeover.teleop.state_machine import Mode, Request

log = logging.getLogger(__name__)

STATUS_HZ = 15.0
DEPLOY_TIMEOUT_S = 60.0
"""How long the policy server may take to load a deployed checkpoint."""
SCENE_PERIOD_S = 0.25
"""Between attempts a simulated station's cameras render the scene this often (the console shows
NO SIGNAL after a second without a frame)."""
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
        self.board.update(value_alert=config.console.value_alert)
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
        self._retry = threading.Event()
        self._seeds: SeedSource | None = None
        self._seed_lock = threading.Lock()
        self._last_seed: int | None = None
        """The seed of the latest attempt (RERECORD starts another with it)."""
        self._again: int | None = None
        """The seed the next attempt must use (set by RERECORD), else None."""
        self.tally = SessionTally(self.board, operator_label(config))
        """The session's figures, updated at each attempt's end."""
        self.health = HealthMonitor()
        """The health panel's items, made for each published status."""
        self._registered: Path | None = None
        """This engine's file among the running engines (:mod:`takeover.app.engine.registry`)."""

    def bind(self) -> tuple[str, str]:
        """Bind the status and command sockets (OSError, or CurveKeyError for unusable keys);
        return the endpoints actually bound. :meth:`run` binds them if this was not called."""
        if self._sockets is None:
            self._sockets = EngineSockets(self.endpoints).bind()
            self.board.update(frames=self._sockets.frames_endpoint)
            self._report(self._sockets.status_endpoint, self._sockets.command_endpoint)
            try:  # so that `takeover policy deploy` finds this engine
                self._registered = registry.register(self._sockets.command_endpoint)
            except OSError as exc:
                log.warning("cannot register the engine for `takeover policy deploy`: %s", exc)
        return self._sockets.status_endpoint, self._sockets.command_endpoint

    def run(self) -> int:
        """Serve until QUIT (or the parent goes). A start that fails (the policy server not
        answering, a device missing, the store unusable) keeps the engine up and publishing why
        (``readiness`` 'failed'), until RETRY or USE_KEYBOARD starts it again."""
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
            while not self._quit.is_set():
                rt = self._open_runtime()
                if rt is None:
                    self._wait_for_retry()
                    continue
                try:
                    self._serve_attempts(rt)
                finally:
                    self._runtime = None
                    self.health.runtime = None
                    rt.close()
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
            if self._registered is not None:
                registry.unregister(self._registered)
                self._registered = None
            _remove_socket_files(bound)
        return 0

    def _open_runtime(self) -> Runtime | None:
        """Start the station, policy, devices and store; None (and the problem published) if that
        failed."""
        self.board.update(
            readiness="starting", problem=None, message="starting the station and the policy server ..."
        )
        rt = Runtime(self.config, extra_observers=[self.board, self.tally], attended=True)
        self._live = rt.live  # frames flow as soon as the station renders (the scene first)
        try:
            rt.open()
            assert rt.store is not None and rt.loop is not None
            rt.store.require_writable("record attempts")  # say so now, not at the first Start
            seeds = SeedSource(self.config.seeds, rt.store)  # never the same scenes each session
        except Exception as exc:
            rt.close()
            log.error("the engine could not start: %s", exc)
            cause = str(exc) or type(exc).__name__
            self.board.update(
                readiness="failed",
                problem=StartProblem(cause, self._remedies(cause)),
                message=f"cannot start: {cause}",
            )
            return None
        self._seeds = seeds
        # Everything made so far (modules, the model, the policy client) lives as long as the
        # engine: keep it out of the collector, so a full collection (set off by the publishers'
        # short-lived messages) does not hold the interpreter lock for milliseconds mid-period.
        gc.collect()
        gc.freeze()
        info = rt.station.info if rt.station is not None else None
        if rt.recorder is not None:
            self.board.watch_recorder(rt.recorder)
        self.board.previews = rt.previews.previews
        self.tally.task = info.task if info is not None else ""
        self.health.runtime = rt
        if rt.loop is not None and self.tally.operator:  # a name given survives a restart
            rt.loop.operator_name = self.tally.operator
            rt.loop.session_task = self.tally.session_task
        self._runtime = rt
        self.board.update(
            readiness="ready",
            problem=None,
            instruction=info.task if info is not None else "",
            station=info.name if info is not None else "",
            cameras=tuple(info.cameras) if info is not None else (),
            policy_id=rt.policy.policy_id if rt.policy is not None else "none",
            store=str(rt.store.root),
            session=self.tally.figures(),
            message="ready: press Start",
        )
        return rt

    def _remedies(self, cause: str) -> tuple[Literal["retry", "keyboard", "settings"], ...]:
        """The ways out of a failed start: retry, the keyboard instead of a missing SpaceMouse, settings."""
        if self.config.operator.kind == "spacemouse" and cause.startswith("spacemouse"):
            return ("retry", "keyboard", "settings")
        return ("retry", "settings")

    def _wait_for_retry(self) -> None:
        while not self._quit.is_set():
            if self._retry.wait(timeout=0.1):
                self._retry.clear()
                return

    def _serve_attempts(self, rt: Runtime) -> None:
        """Run an attempt each time Start is pressed, until QUIT."""
        loop, seeds = rt.loop, self._seeds
        assert loop is not None and seeds is not None
        scene = rt.station if isinstance(rt.station, RendersOffLoop) else None
        shown = 0.0
        while not self._quit.is_set():
            if scene is not None and time.monotonic() - shown >= SCENE_PERIOD_S:
                scene.show_scene()  # between attempts the cameras still show the scene, live
                shown = time.monotonic()
            if not self._start.wait(timeout=0.1):
                continue
            self._start.clear()
            with self._seed_lock:
                seed, self._again = (self._again, None) if self._again is not None else (seeds.next(), None)
                self._last_seed = seed
            try:
                loop.run_episode(seed=seed)
            except AttemptRefused as exc:  # raced past the check at the command
                self.board.update(message=f"cannot start: {exc}")
                continue

    # -- threads ------------------------------------------------------------------------
    def _publish(self, sock: zmq.Socket[bytes]) -> None:
        period = 1.0 / STATUS_HZ
        while not self._quit.wait(period):
            sock.send(self.publishable().encode())

    def publishable(self) -> Status:
        """The status to publish now: the board's, with the attempt's clock and the health items."""
        status = self.board.publishable()
        rt = self._runtime
        if rt is not None and rt.loop is not None:
            clock = attempt_clock(rt.loop) if status.episode_active else None
            status = replace(status, clock=clock, health=self.health.items(status.camera_health))
        return status

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
            # An attempt still running when the console goes (nobody said how it went) is kept
            # as interrupted.
            if rt is not None and rt.loop is not None and rt.loop.running:
                rt.loop.control.request_stop(end_reason="interrupted")
            self._quit.set()
            return ""
        if cmd.name in (CommandName.RETRY, CommandName.USE_KEYBOARD):
            return self._retry_start(cmd.name)
        if cmd.name is CommandName.SESSION:
            return self._session(cmd)
        if cmd.name is CommandName.VALUE_ALERT:
            return self._value_alert(cmd.value_alert)
        if rt is None or rt.loop is None:
            snap = self.board.snapshot()
            if snap.readiness == "failed" and snap.problem is not None:
                return f"the engine could not start: {snap.problem.cause}"
            return "the engine is still starting"
        loop = rt.loop
        active = loop.running or self.board.snapshot().episode_active
        if cmd.name is CommandName.START_EPISODE:
            if active:
                return "an episode is already running"
            return self._start_attempt(loop, again=False)
        if cmd.name is CommandName.DEPLOY:
            if active or self._start.is_set():
                return "an attempt is running: deploy between attempts"
            return self._deploy(rt, cmd.checkpoint)
        if cmd.name is CommandName.RERECORD:
            if active:
                with self._seed_lock:
                    self._again = self._last_seed
                loop.control.request_stop(discard=True, end_reason="discarded")
                self._start.set()  # the next attempt starts as soon as this one has ended
                return ""
            return self._start_attempt(loop, again=True)
        if cmd.name is CommandName.STOP_EPISODE:
            if not active:
                return NOT_RUNNING
            loop.control.request_stop(outcome=cmd.outcome, note=cmd.note)
        elif cmd.name is CommandName.DISCARD_EPISODE:
            if not active:
                return NOT_RUNNING
            loop.control.request_stop(discard=True, end_reason="discarded", note=cmd.note)
        elif cmd.name is CommandName.INTERRUPT:
            if not active:
                return NOT_RUNNING
            loop.control.request_stop(end_reason="interrupted", note=cmd.note)
        elif cmd.name is CommandName.KEYS:
            if rt.keyboard is None:
                return ""
            if not loop.running and cmd.keys:
                rt.keyboard.set_keys((), time.monotonic())  # nothing stays pressed for the next attempt
                return NOT_RUNNING
            rt.keyboard.set_keys(cmd.keys, time.monotonic())
        else:
            refused, applied = loop.operator_request(_REQUESTS[cmd.name], reason="console")
            if refused:
                return refused
            for tr in applied:  # between attempts: an e-stop latched or reset now
                self.board.on_event(Event(EVENTS[tr.request], 0, tr.t, tr.reason))
            if applied:
                self.board.update(mode="ESTOP" if loop.machine.mode is Mode.ESTOP else "IDLE")
        return ""

    def _start_attempt(self, loop: ControlLoop, again: bool) -> str:
        """START (``again``: RERECORD between attempts, with the latest attempt's seed)."""
        refusal = loop.start_refusal()
        if refusal:
            self.board.update(message=f"cannot start: {refusal}")
            return refusal
        if again:
            with self._seed_lock:
                if self._last_seed is None:
                    return "no attempt to record again yet: press Start"
                self._again = self._last_seed
        self._start.set()
        return ""

    def _deploy(self, rt: Runtime, checkpoint: str) -> str:
        """DEPLOY between attempts: the policy server serves ``checkpoint`` from the next attempt on
        (its id is the one the next attempt records); '' or the one-line reason it did not."""
        from takeover.app.policy.client import PolicyUnavailableError

        if rt.policy is None:
            return "this engine runs without a policy: nothing to deploy to"
        if not checkpoint:
            return "deploy needs a checkpoint file"
        try:
            reply = rt.policy.deploy(checkpoint, DEPLOY_TIMEOUT_S)
        except PolicyUnavailableError as exc:
            return str(exc)
        was = reply.previous_policy_id
        self.board.update(
            policy_id=reply.policy_id,
            message=f"deployed policy {reply.policy_id} (was {was}) for the next attempt",
        )
        return ""

    def _value_alert(self, threshold: float | None) -> str:
        """VALUE_ALERT: the threshold every console alerts below, from now on (None: no alert)."""
        if threshold is None:
            said = "value alert off"
        else:
            said = f"value alert: the console alerts while the value estimate is below {threshold:g}"
        self.board.update(value_alert=threshold, message=said)
        return ""

    def _session(self, cmd: Command) -> str:
        """SESSION: the operator's name and the session's task, from the next attempt on."""
        if cmd.operator:
            self.tally.operator = cmd.operator
        if cmd.task:
            self.tally.session_task = cmd.task
        rt = self._runtime
        if rt is not None and rt.loop is not None:
            if self.tally.operator:  # else the operator's device, as the runtime named it
                rt.loop.operator_name = self.tally.operator
            rt.loop.session_task = self.tally.session_task
        self.board.update(session=self.tally.figures())
        return ""

    def _retry_start(self, name: CommandName) -> str:
        """RETRY / USE_KEYBOARD after a failed start."""
        if self.board.snapshot().readiness != "failed":
            return "the engine did not fail to start: nothing to retry"
        if name is CommandName.USE_KEYBOARD:
            self.config = replace(self.config, operator=replace(self.config.operator, kind="keyboard"))
            self._config_text = ""  # consoles that attach see the configuration in use
        self._retry.set()
        return ""


def _remove_socket_files(endpoints: tuple[str, ...]) -> None:
    """libzmq leaves the files of closed ipc:// sockets behind; whoever binds removes them."""
    for endpoint in endpoints:
        if endpoint.startswith("ipc://"):
            Path(endpoint.removeprefix("ipc://")).unlink(missing_ok=True)
