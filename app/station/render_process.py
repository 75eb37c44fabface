"""Camera rendering off the control loop: a child process renders the simulation's cameras.

MuJoCo's offscreen renderer (software EGL on a machine without a GPU) costs about 16 ms per
224x168 camera and holds the interpreter lock while it runs, so a render thread still steals the
loop's time (measured: p99 period error 232 ms at 50 Hz with two cameras rendered on a thread).
Here a child process with its own copy of the model renders instead:

- The station sends the model (an MJB file, again after every reset: Meta-World moves the goal
  in the model) and, after every step, a :class:`SimState` snapshot (time, ``qpos``, ``qvel``,
  mocap pose: well under a kilobyte) over a ``SOCK_SEQPACKET`` Unix socket pair. Sending never
  blocks the loop: a snapshot the socket cannot take at once is skipped and counted.
- The child keeps only the newest snapshot and renders every camera from it at most ``fps``
  times a second; each frame is stamped with the snapshot's time ``t``, the time of the
  observation whose state it shows.
- Frames come back through shared memory (one ``memfd`` the parent creates and both map, a ring
  of :data:`SLOTS` slots per camera): the child writes a slot, then sends a small
  :class:`FrameReady`; a reader thread here copies the slot out and checks the slot's sequence
  number after the copy, so a slot overwritten meanwhile is counted, never shown torn.

Messages are typed msgpack messages (:mod:`takeover.app.net.messages`); no pickle. The child
dies with its parent: it stops at the end of file on its socket (the kernel closes the parent's
end however the parent ends).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import mmap
import os
import select
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from takeover.app.net import wire
from takeover.app.net.messages import Message, MessageTable

log = logging.getLogger(__name__)

NICENESS = 5
"""This child runs at a lower priority than the engine, so on a busy machine the scheduler gives
the control loop the CPU first (the child's work is allowed to fall behind; the loop's is not)."""

SLOTS = 4
"""Frames per camera in the shared ring: a slot is rewritten only after SLOTS - 1 newer frames."""
_HEADER = struct.Struct("<qd")
"""Each slot starts with (sequence number, snapshot time); the RGB pixels follow."""
MAX_MESSAGE_BYTES = 64 * 1024
KEEP_MODELS = 8
"""Model files kept (the newest ones): the child may not have read the last few messages yet."""
START_TIMEOUT_S = 20.0


class RenderWorkerError(RuntimeError):
    """The render process could not start or stopped; the message says why."""


@dataclass(frozen=True)
class RenderSetup(Message):
    """Parent -> child, first: what to render and where the frames go."""

    TYPE: ClassVar[str] = "render_setup"
    cameras: tuple[str, ...]
    upside_down: tuple[bool, ...]
    width: int
    height: int
    fps: float


@dataclass(frozen=True)
class ModelFile(Message):
    """Parent -> child: render with the model in this MJB file from now on."""

    TYPE: ClassVar[str] = "render_model"
    path: str


@dataclass(frozen=True)
class SimState(Message):
    """Parent -> child: the simulation's state right after a step, as the observation ``t`` saw it."""

    TYPE: ClassVar[str] = "render_state"
    t: float
    qpos: np.ndarray
    qvel: np.ndarray
    mocap_pos: np.ndarray
    mocap_quat: np.ndarray


@dataclass(frozen=True)
class FrameReady(Message):
    """Child -> parent: camera ``camera`` (an index into the setup's cameras) wrote frame ``seq``
    of the snapshot taken at ``t`` into ring slot ``slot``."""

    TYPE: ClassVar[str] = "render_frame"
    camera: int
    slot: int
    seq: int
    t: float


@dataclass(frozen=True)
class RenderFailed(Message):
    """Child -> parent: rendering failed; the child exits after sending it."""

    TYPE: ClassVar[str] = "render_failed"
    reason: str


_TO_CHILD = MessageTable[Message]([RenderSetup, ModelFile, SimState])
_TO_PARENT = MessageTable[Message]([FrameReady, RenderFailed])


@dataclass(frozen=True)
class RenderedFrame:
    """One rendered camera image, stamped with the time of the simulation state it shows."""

    camera: str
    seq: int
    """1, 2, ... per camera: distinct frames have distinct numbers."""
    t: float
    """Monotonic time of the observation whose state the image shows (the snapshot's time)."""
    image: np.ndarray
    """(H, W, 3) uint8 RGB, upright."""


FrameListener = Callable[[RenderedFrame], object]


def _slot_bytes(width: int, height: int) -> int:
    return _HEADER.size + width * height * 3


class RenderProcess:
    """The parent's side: starts the child, feeds it states, collects its frames.

    No I/O in the constructor; :meth:`start` starts the child (and waits until it renders),
    :meth:`close` stops it. Frames are kept as the newest per camera (:meth:`latest`) and as the
    ones not yet taken (:meth:`take_new`); listeners (:meth:`add_listener`) get every frame on
    the reader thread and must not block.
    """

    def __init__(
        self,
        cameras: tuple[str, ...],
        upside_down: tuple[bool, ...],
        width: int,
        height: int,
        fps: float,
    ) -> None:
        self.cameras = cameras
        self._setup = RenderSetup(cameras, upside_down, width, height, fps)
        self._shape = (height, width, 3)
        self._slot = _slot_bytes(width, height)
        self._process: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._map: mmap.mmap | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._model_no = 0
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()
        self._latest: dict[str, RenderedFrame] = {}
        self._new: dict[str, RenderedFrame] = {}
        self._listeners: list[FrameListener] = []
        self._first = threading.Event()
        self.skipped_states = 0
        """Snapshots not sent because the child was not reading (the loop never waits for it)."""
        self.torn_frames = 0
        """Frames overwritten before they were copied out (counted, never shown)."""
        self.failure = ""
        """Why the render process stopped, if it did."""

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self, model: Any, state: SimState) -> None:
        """Start the child with ``model`` (a MjModel) and render ``state`` once: returns when that
        first frame is there (RenderWorkerError if it is not within START_TIMEOUT_S)."""
        if self._process is not None:
            return
        n = len(self.cameras)
        fd = os.memfd_create("takeover-frames", os.MFD_CLOEXEC)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            os.ftruncate(fd, n * SLOTS * self._slot)
            self._map = mmap.mmap(fd, n * SLOTS * self._slot)
            self._dir = tempfile.TemporaryDirectory(prefix="takeover-render-")
            env = {**os.environ, "LP_NUM_THREADS": os.environ.get("LP_NUM_THREADS", "1")}
            env.setdefault("MUJOCO_GL", "egl")
            os.set_inheritable(fd, True)
            self._process = subprocess.Popen(
                [sys.executable, "-m", "takeover.app.station.render_process", str(theirs.fileno()), str(fd)],
                stdin=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(), fd),
                env=env,
            )
        except BaseException:
            ours.close()
            self._release()
            raise
        finally:
            theirs.close()
            os.close(fd)  # the mapping and the child keep it
        self._sock = ours
        ours.sendall(self._setup.encode())
        self.set_model(model)
        self._reader = threading.Thread(target=self._read, name="render-frames", daemon=True)
        self._reader.start()
        self.submit(state)
        if not self._first.wait(START_TIMEOUT_S):
            why = self.failure or f"no frame within {START_TIMEOUT_S:g} s"
            self.close()
            raise RenderWorkerError(f"the camera render process did not start: {why}")
        if self.failure:
            why = self.failure
            self.close()
            raise RenderWorkerError(f"the camera render process did not start: {why}")

    def close(self) -> None:
        """Stop the child (end of file on its socket, then SIGKILL if it lingers) and free everything."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the reader thread; the child sees end of file
            sock.close()
        process, self._process = self._process, None
        if process is not None:
            try:
                process.wait(timeout=3.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.join(timeout=3.0)
        self._release()

    def _release(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    @property
    def running(self) -> bool:
        return self._process is not None and not self.failure

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    # -- feeding it -------------------------------------------------------------------------------
    def set_model(self, model: Any) -> None:
        """Render with ``model`` from the next state on (after a reset that changed it)."""
        import mujoco

        if self._sock is None or self._dir is None:
            return
        self._model_no += 1
        path = Path(self._dir.name) / f"model-{self._model_no}.mjb"
        buffer = np.empty(mujoco.mj_sizeModel(model), dtype=np.uint8)
        mujoco.mj_saveModel(model, None, buffer)
        path.write_bytes(buffer.tobytes())
        old = Path(self._dir.name) / f"model-{self._model_no - KEEP_MODELS}.mjb"
        old.unlink(missing_ok=True)  # long loaded: the child reads messages between two renders
        self._send(ModelFile(str(path)).encode(), must=True)

    def submit(self, state: SimState) -> None:
        """Send a snapshot; never blocks (a snapshot the socket cannot take now is skipped)."""
        if self._sock is not None:
            self._send(state.encode(), must=False)

    def _send(self, payload: bytes, must: bool) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            sock.send(payload, 0 if must else socket.MSG_DONTWAIT)
        except BlockingIOError:
            self.skipped_states += 1
        except OSError as exc:
            self._fail(f"the render process is gone ({exc.strerror or exc})")

    # -- frames -----------------------------------------------------------------------------------
    def add_listener(self, listener: FrameListener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: FrameListener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def latest(self) -> dict[str, RenderedFrame]:
        with self._lock:
            return dict(self._latest)

    def take_new(self) -> dict[str, RenderedFrame]:
        """Frames that arrived since the last call (the newest per camera)."""
        with self._lock:
            new, self._new = self._new, {}
        return new

    def _read(self) -> None:
        sock = self._sock
        assert sock is not None
        while True:
            try:
                payload = sock.recv(MAX_MESSAGE_BYTES)
            except OSError:
                payload = b""
            if not payload:
                if self._sock is not None:  # not closed by us
                    code = self._process.poll() if self._process is not None else None
                    self._fail(f"the render process ended (exit code {code})")
                return
            try:
                msg = _TO_PARENT.decode(payload)
            except wire.WireError as exc:
                self._fail(f"bad message from the render process: {exc}")
                return
            if isinstance(msg, RenderFailed):
                self._fail(msg.reason)
                return
            assert isinstance(msg, FrameReady)
            frame = self._copy(msg)
            if frame is None:
                continue
            with self._lock:
                self._latest[frame.camera] = frame
                self._new[frame.camera] = frame
                listeners = list(self._listeners)
            self._first.set()
            for listener in listeners:
                listener(frame)

    def _copy(self, msg: FrameReady) -> RenderedFrame | None:
        shared = self._map
        if shared is None or not (0 <= msg.camera < len(self.cameras) and 0 <= msg.slot < SLOTS):
            return None
        offset = (msg.camera * SLOTS + msg.slot) * self._slot
        pixels = np.frombuffer(shared, np.uint8, self._slot - _HEADER.size, offset + _HEADER.size)
        image = pixels.reshape(self._shape).copy()
        seq, _t = _HEADER.unpack_from(shared, offset)
        if seq != msg.seq:  # rewritten while we copied
            self.torn_frames += 1
            return None
        return RenderedFrame(self.cameras[msg.camera], msg.seq, msg.t, image)

    def _fail(self, reason: str) -> None:
        if not self.failure:
            self.failure = wire.cap(reason)
            log.error("camera rendering stopped: %s", self.failure)
        self._first.set()


# -- the child ------------------------------------------------------------------------------------
_SIZES = (
    "nq",
    "nv",
    "nu",
    "na",
    "nbody",
    "njnt",
    "ngeom",
    "nsite",
    "ncam",
    "nlight",
    "nmesh",
    "nmeshvert",
    "nmeshface",
    "ntex",
    "ntexdata",
    "nmat",
    "nmocap",
    "nskin",
    "nflex",
    "nhfield",
)


def _same_structure(a: Any, b: Any) -> bool:
    return all(getattr(a, n) == getattr(b, n) for n in _SIZES)


class _Child:
    def __init__(self, sock: socket.socket, shared: mmap.mmap, setup: RenderSetup) -> None:
        self.sock = sock
        self.shared = shared
        self.setup = setup
        self.slot_bytes = _slot_bytes(setup.width, setup.height)
        self.model: Any = None
        self.data: Any = None
        self.renderer: Any = None
        self.seq = [0] * len(setup.cameras)

    def load(self, path: str) -> None:
        """Render with the model in ``path``. A model of the same structure (a reset moved the goal)
        is copied into the one the renderer holds: making a new renderer costs about half a second,
        the first steps of every attempt would go without frames."""
        import mujoco

        model = mujoco.MjModel.from_binary_path(path)
        if self.model is not None and _same_structure(self.model, model):
            for name in dir(model):
                value = getattr(model, name)
                if isinstance(value, np.ndarray) and value.flags.writeable and value.size:
                    np.copyto(getattr(self.model, name), value)
            return
        if self.renderer is not None:
            self.renderer.close()
        self.renderer = mujoco.Renderer(model, self.setup.height, self.setup.width)
        self.model, self.data = model, mujoco.MjData(model)

    def render(self, state: SimState) -> None:
        import mujoco

        model, data, renderer = self.model, self.data, self.renderer
        data.qpos[:] = state.qpos
        data.qvel[:] = state.qvel
        data.mocap_pos[:] = state.mocap_pos
        data.mocap_quat[:] = state.mocap_quat
        mujoco.mj_forward(model, data)
        off = (
            mujoco.mjtRndFlag.mjRND_SHADOW,
            mujoco.mjtRndFlag.mjRND_REFLECTION,
            mujoco.mjtRndFlag.mjRND_SKYBOX,
        )
        for i, name in enumerate(self.setup.cameras):
            renderer.update_scene(data, camera=name)
            for flag in off:
                renderer.scene.flags[flag] = 0
            image = renderer.render()
            if self.setup.upside_down[i]:
                image = image[::-1, ::-1]
            self.seq[i] += 1
            seq = self.seq[i]
            slot = seq % SLOTS
            offset = (i * SLOTS + slot) * self.slot_bytes
            _HEADER.pack_into(self.shared, offset, -1, state.t)  # being written
            target = np.frombuffer(
                self.shared, np.uint8, self.slot_bytes - _HEADER.size, offset + _HEADER.size
            )
            target.reshape(image.shape)[...] = image
            _HEADER.pack_into(self.shared, offset, seq, state.t)
            self.sock.send(FrameReady(i, slot, seq, state.t).encode())

    def run(self) -> None:
        period = 1.0 / self.setup.fps
        state: SimState | None = None
        due = 0.0
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        while True:
            wait = -1 if state is None else max(0, int(1000 * (due - time.monotonic())))
            payload = self.sock.recv(MAX_MESSAGE_BYTES) if poller.poll(wait) else None
            if payload is not None:
                if not payload:
                    return  # the parent is gone, or closed us
                msg = _TO_CHILD.decode(payload)
                if isinstance(msg, ModelFile):
                    self.load(msg.path)
                elif isinstance(msg, SimState):
                    state = msg
                continue  # drain what is queued: only the newest state is rendered
            if state is None or self.renderer is None:
                continue
            now = time.monotonic()
            self.render(state)
            state = None
            due = max(due + period, now)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Render a MuJoCo station's cameras for its parent process.")
    ap.add_argument("sock_fd", type=int)
    ap.add_argument("frames_fd", type=int)
    args = ap.parse_args(argv)
    with contextlib.suppress(OSError):  # background work: the control loop's process comes first
        os.nice(NICENESS)
    sock = socket.socket(fileno=args.sock_fd)
    size = os.fstat(args.frames_fd).st_size
    shared = mmap.mmap(args.frames_fd, size)
    try:
        setup = _TO_CHILD.decode(sock.recv(MAX_MESSAGE_BYTES))
        if not isinstance(setup, RenderSetup):
            raise RenderWorkerError("expected the render setup first")
        _Child(sock, shared, setup).run()
    except (BrokenPipeError, ConnectionResetError):
        return 0  # the parent closed our socket while we were sending: it is done with us
    except Exception as exc:  # tell the parent why, in one line, then exit
        log.exception("camera rendering failed")
        with contextlib.suppress(OSError):
            sock.send(RenderFailed(wire.cap(f"{type(exc).__name__}: {exc}")).encode())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
