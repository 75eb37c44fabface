"""JPEG encoding in a child process, so encoders never contend with the control loop for the
interpreter lock.

Encoder threads in the loop's process hold the interpreter lock between OpenCV calls (measured:
a fake station at 50 Hz recording 2 cameras had period-error spikes up to 37.8 ms). Here:

- Frames go into a byte ring in shared memory (a ``memfd`` both processes map) and a small job
  header (camera, time, step, shape, where in the ring) goes over a Unix stream socket. A frame
  that does not fit (the ring is full, or ``capacity`` frames are already waiting) is refused at
  once, and the recorder counts it dropped: nothing waits.
- The child encodes jobs in order and sends each JPEG back on the socket; a reader thread here
  hands it to the write-ahead log (exactly what the encoder threads did) and frees its place in
  the ring.
- :meth:`EncoderProcess.finish` waits until every frame taken has been written or counted dropped;
  if the child dies (or cannot encode a frame), the frames it held are counted dropped and
  :attr:`EncoderProcess.failure` says why; the recorder then holds the robot, as for a log it
  cannot write.

Messages are msgpack (:mod:`takeover.storage.codec`), length-prefixed; no pickle. The child stops
at the end of file on its socket, so it dies with its parent.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import mmap
import os
import socket
import struct
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from takeover.storage.codec import CodecError, pack, unpack

log = logging.getLogger(__name__)

NICENESS = 5
"""This child runs at a lower priority than the engine, so on a busy machine the scheduler gives
the control loop the CPU first (the child's work is allowed to fall behind; the loop's is not)."""

RING_BYTES = 64 * 1024 * 1024
"""Shared memory for frames waiting to be encoded (70 frames of 640x480, 400 of 224x168)."""
_LENGTH = struct.Struct("<I")
MAX_REPLY_BYTES = 64 * 1024 * 1024
START_TIMEOUT_S = 30.0
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)


class EncoderError(RuntimeError):
    """The encoder process could not start."""


@dataclass(frozen=True)
class _Job:
    camera: str
    t: float
    step: int
    height: int
    width: int
    start: int
    """Virtual ring position of its pixels (the place is free again once it is encoded)."""


Written = Callable[[str, float, int, int, int, bytes], None]
"""Receives (camera, t, step, height, width, JPEG) for each encoded frame (on the reader thread)."""
Dropped = Callable[[str], None]
"""Receives the camera of each frame taken but not encoded (the child failed or died)."""


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    payload = pack(message)
    sock.sendall(_LENGTH.pack(len(payload)) + payload)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _recv(sock: socket.socket) -> dict[str, Any] | None:
    head = _recv_exact(sock, _LENGTH.size)
    if head is None:
        return None
    (n,) = _LENGTH.unpack(head)
    if n > MAX_REPLY_BYTES:
        raise CodecError(f"message of {n} bytes is larger than {MAX_REPLY_BYTES}")
    body = _recv_exact(sock, n)
    if body is None:
        return None
    msg = unpack(body)
    if not isinstance(msg, dict):
        raise CodecError("expected a map")
    return msg


class EncoderProcess:
    """The parent's side. No I/O in the constructor: :meth:`start`, then per attempt
    :meth:`begin` / :meth:`offer` / :meth:`finish`; :meth:`close` at the end."""

    def __init__(self, quality: int, capacity: int, ring_bytes: int = RING_BYTES) -> None:
        self.quality = quality
        self.capacity = capacity
        self.ring_bytes = ring_bytes
        self._process: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._map: mmap.mmap | None = None
        self._reader: threading.Thread | None = None
        self._cond = threading.Condition()
        self._jobs: OrderedDict[int, _Job] = OrderedDict()
        self._next_id = 0
        self._head = 0
        """Virtual ring position where the next frame goes (the ring is ``head % ring_bytes``)."""
        self._written: Written | None = None
        self._dropped: Dropped | None = None
        self._lost: list[str] = []
        self.failure = ""
        """Why encoding stopped ('' while it works)."""

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def alive(self) -> bool:
        return self._process is not None and not self.failure

    def start(self) -> None:
        """Start the child and wait until it can encode (EncoderError if it cannot)."""
        if self._process is not None:
            return
        fd = os.memfd_create("takeover-encode", os.MFD_CLOEXEC)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            os.ftruncate(fd, self.ring_bytes)
            # Populated now: the first pass through the ring does not page-fault under the loop.
            self._map = mmap.mmap(fd, self.ring_bytes, flags=mmap.MAP_SHARED | _POPULATE)
            os.set_inheritable(fd, True)
            argv = [sys.executable, "-m", "takeover.recorder.encoder_process"]
            argv += [str(theirs.fileno()), str(fd), str(self.quality)]
            self._process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, pass_fds=(theirs.fileno(), fd))
        except BaseException:
            ours.close()
            if self._map is not None:
                self._map.close()
                self._map = None
            raise
        finally:
            theirs.close()
            os.close(fd)
        self._sock = ours
        self.failure = ""
        try:
            ours.settimeout(START_TIMEOUT_S)
            hello = _recv(ours)
            ours.settimeout(None)
        except (OSError, CodecError) as exc:
            hello = {"error": str(exc)}
        if hello != {"ready": True}:
            self.close()
            why = hello.get("error", "it exited") if isinstance(hello, dict) else "it exited"
            raise EncoderError(f"the camera encoder process did not start: {why}")
        self._reader = threading.Thread(target=self._read, name="recorder-encoded", daemon=True)
        self._reader.start()

    def begin(self, written: Written, dropped: Dropped) -> None:
        """Encoded frames of the attempt starting now go to ``written``; frames lost, to ``dropped``."""
        with self._cond:
            self._written, self._dropped = written, dropped

    def offer(self, camera: str, image: np.ndarray, t: float, step: int) -> bool:
        """Take a frame for encoding; False (nothing waits) when there is no room or no encoder."""
        pixels = np.ascontiguousarray(image, dtype=np.uint8)
        if pixels.ndim != 3 or pixels.shape[2] != 3:
            return False
        n = pixels.nbytes
        with self._cond:
            sock, shared = self._sock, self._map
            if sock is None or shared is None or self.failure or len(self._jobs) >= self.capacity:
                return False
            start = self._head
            if start % self.ring_bytes + n > self.ring_bytes:  # frames are contiguous: wrap
                start += self.ring_bytes - start % self.ring_bytes
            tail = next(iter(self._jobs.values())).start if self._jobs else start  # oldest still held
            if start + n - tail > self.ring_bytes:
                return False
            offset = start % self.ring_bytes
            # numpy copies without the interpreter lock (a 640x480 frame: about 60 us)
            np.copyto(np.frombuffer(shared, np.uint8, n, offset).reshape(pixels.shape), pixels)
            job_id = self._next_id
            self._next_id += 1
            h, w = int(pixels.shape[0]), int(pixels.shape[1])
            self._jobs[job_id] = _Job(camera, t, step, h, w, start)
            self._head = start + n
            try:
                _send(sock, {"job": job_id, "offset": offset, "height": h, "width": w})
            except OSError as exc:
                self._jobs.pop(job_id)
                self._fail_locked(f"the encoder process is gone ({exc.strerror or exc})")
                return False
        return True

    def finish(self, timeout_s: float = 30.0) -> None:
        """Wait until every frame taken so far is written or counted dropped."""
        with self._cond:
            if not self._cond.wait_for(lambda: not self._jobs or bool(self.failure), timeout_s):
                self._fail_locked(f"the encoder process did not finish its frames within {timeout_s:g} s")
        self._report_lost()
        with self._cond:
            self._written = self._dropped = None

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        process, self._process = self._process, None
        if process is not None:
            try:
                process.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5.0)
            self._reader = None
        with self._cond:
            if self._map is not None:
                self._map.close()
                self._map = None

    # -- the reader thread ------------------------------------------------------------------------
    def _read(self) -> None:
        sock = self._sock
        assert sock is not None
        while True:
            reason = ""
            try:
                msg = _recv(sock)
            except OSError:  # reset by a child that died with frames unread, or closed by us
                msg = None
            except CodecError as exc:
                msg = None
                reason = f"bad answer from the encoder process: {exc}"
            if msg is None:
                with self._cond:
                    if self._sock is not None or self._jobs:
                        code = self._exit_code() if not reason else None
                        self._fail_locked(reason or f"the encoder process ended (exit code {code})")
                self._report_lost()
                return
            self._done(msg)

    def _exit_code(self) -> int | None:
        process = self._process
        if process is None:
            return None
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=1.0)
        return process.poll()

    def _done(self, msg: dict[str, Any]) -> None:
        job_id = msg.get("job")
        with self._cond:
            job = self._jobs.pop(job_id, None) if isinstance(job_id, int) else None
            written, dropped = self._written, self._dropped
            self._cond.notify_all()
        if job is None:
            return
        jpeg = msg.get("jpeg")
        if isinstance(jpeg, bytes) and written is not None:
            written(job.camera, job.t, job.step, job.height, job.width, jpeg)
        else:
            log.error("camera %s: frame could not be encoded: %s", job.camera, msg.get("error", "no JPEG"))
            if dropped is not None:
                dropped(job.camera)

    def _fail_locked(self, reason: str) -> None:
        """Under ``_cond``: stop taking frames; every frame still held is lost (reported by
        :meth:`_report_lost`, outside the lock: the recorder's counter has a lock of its own)."""
        if not self.failure:
            self.failure = reason
            log.error("camera encoding stopped: %s", reason)
        self._lost.extend(job.camera for job in self._jobs.values())
        self._jobs.clear()
        self._cond.notify_all()

    def _report_lost(self) -> None:
        with self._cond:
            lost, self._lost = self._lost, []
            dropped = self._dropped
        if dropped is not None:
            for camera in lost:
                dropped(camera)


# -- the child ------------------------------------------------------------------------------------
def _serve(sock: socket.socket, shared: mmap.mmap, quality: int) -> None:
    import cv2

    params = [int(cv2.IMWRITE_JPEG_QUALITY), quality]
    _send(sock, {"ready": True})
    while True:
        msg = _recv(sock)
        if msg is None:
            return
        job, offset, h, w = msg["job"], msg["offset"], msg["height"], msg["width"]
        if not all(isinstance(v, int) for v in (job, offset, h, w)) or offset + h * w * 3 > len(shared):
            raise CodecError(f"bad job {sorted(msg)}")
        image = np.frombuffer(shared, np.uint8, h * w * 3, offset).reshape(h, w, 3)
        try:
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
        except cv2.error as exc:
            ok, error = False, str(exc)
        else:
            error = "" if ok else "imencode failed"
        _send(sock, {"job": job, "jpeg": buf.tobytes()} if ok else {"job": job, "error": error[:200]})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Encode camera frames to JPEG for the recorder in the parent.")
    ap.add_argument("sock_fd", type=int)
    ap.add_argument("ring_fd", type=int)
    ap.add_argument("quality", type=int)
    args = ap.parse_args(argv)
    with contextlib.suppress(OSError):  # background work: the control loop's process comes first
        os.nice(NICENESS)
    sock = socket.socket(fileno=args.sock_fd)
    shared = mmap.mmap(args.ring_fd, os.fstat(args.ring_fd).st_size)
    try:
        _serve(sock, shared, args.quality)
    except (BrokenPipeError, ConnectionResetError):
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
