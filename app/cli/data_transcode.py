"""`takeover data transcode`: turn the store's recorded camera streams into video blobs, in the
background, out of the way of recording.

The command lowers its own priority (``os.nice``) and pauses, between two frames, while an attempt
is being recorded into the store: the recorder holds the lock of that attempt's write-ahead log
(``<store>/wal/<episode>/writer.lock``) from its start until it is stored, so a held lock means
an attempt in flight. It resumes when no lock is held. Every stream not yet transcoded with the
given parameters is transcoded; stopping it (Ctrl-C, a crash) and starting it again carries on
where it stopped. The recorded JPEG frames are kept.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from takeover.app.cli.common import add_store_option, open_store, user_errors
from takeover.recorder.wal import log_in_use
from takeover.storage.errors import EpisodeFileError, listing
from takeover.storage.lock import ProcessLock

if TYPE_CHECKING:
    from takeover.storage.transcode import StreamRef

TRANSCODE_LOCK = "transcode.lock"
"""In a store's folder: held by the one transcoder working on it (two would do the same work)."""

NICENESS = 10
"""Transcoding is background work: recording, the control loop and the GUI come first."""


def attempts_in_flight(wal_dir: Path) -> list[str]:
    """The episodes whose attempts are being recorded now (their write-ahead log's lock is held)."""
    if not wal_dir.is_dir():
        return []
    return [d.name for d in sorted(wal_dir.iterdir()) if d.is_dir() and log_in_use(d)]


class PauseWhileRecording:
    """Called between frames: returns at once unless an attempt is being recorded, else blocks until
    none is. Looks at the logs at most every ``check_s`` seconds while running, and every
    ``poll_s`` while paused. ``on_pause(episodes)`` and ``on_resume()`` say so."""

    def __init__(
        self,
        wal_dir: Path,
        *,
        check_s: float = 0.2,
        poll_s: float = 0.5,
        on_pause: Callable[[list[str]], None] = lambda _: None,
        on_resume: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.wal_dir = wal_dir
        self.check_s, self.poll_s = check_s, poll_s
        self.on_pause, self.on_resume = on_pause, on_resume
        self._clock, self._sleep = clock, sleep
        self._checked = -float("inf")
        self.pauses = 0
        """How many times it has paused."""

    def __call__(self) -> None:
        now = self._clock()
        if now - self._checked < self.check_s:
            return
        self._checked = now
        busy = attempts_in_flight(self.wal_dir)
        if not busy:
            return
        self.pauses += 1
        self.on_pause(busy)
        while busy:
            self._sleep(self.poll_s)
            busy = attempts_in_flight(self.wal_dir)
        self._checked = self._clock()
        self.on_resume()


class Progress:
    """One line on a terminal, rewritten in place (a bar, streams and frames done); on anything
    else, one line per finished stream."""

    def __init__(self, streams: list[StreamRef], out: TextIO | None = None) -> None:
        self.total_frames = max(1, sum(s.frames for s in streams))
        self.streams = len(streams)
        self.out = out or sys.stderr  # looked up now: the stream may have been replaced since import
        self.tty = self.out.isatty()
        self.done_streams = 0
        self.done_frames = 0
        self._shown = 0.0

    def frame(self, stream: StreamRef) -> None:
        self.done_frames += 1
        now = time.monotonic()
        if self.tty and now - self._shown >= 0.1:
            self._shown = now
            self._draw(str(stream))

    def finished(self, stream: StreamRef, line: str) -> None:
        self.done_streams += 1
        if self.tty:
            self.out.write("\r\x1b[K")
        print(line, file=self.out, flush=True)
        if self.tty:
            self._draw(str(stream))

    def note(self, line: str) -> None:
        if self.tty:
            self.out.write("\r\x1b[K")
        print(line, file=self.out, flush=True)

    def _draw(self, what: str) -> None:
        width = 30
        filled = int(width * self.done_frames / self.total_frames)
        bar = "#" * filled + "." * (width - filled)
        self.out.write(
            f"\r\x1b[K[{bar}] {self.done_streams}/{self.streams} streams, "
            f"{self.done_frames}/{self.total_frames} frames  {what}"
        )
        self.out.flush()


@user_errors(ValueError)
def run_transcode(args: argparse.Namespace) -> int:
    # PyAV (FFmpeg) is loaded by this command only, not by every `takeover` start.
    from takeover.storage.transcode import pending_streams, transcode_stream
    from takeover.storage.video import VideoError, VideoParams, check_encoder, require_codec

    params = VideoParams(args.codec, args.gop, args.crf, args.preset or "")
    require_codec(params.codec)
    check_encoder(params)
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    with (
        open_store(args) as store,
        ProcessLock(store.root / TRANSCODE_LOCK, "takeover data transcode") as lock,
    ):
        store.require_writable("transcode camera streams")
        lock.acquire(
            f"transcoding into the store at {store.root}", "wait for it to finish, or stop it (it resumes)"
        )
        todo = pending_streams(store, params, args.episodes)
        if not todo:
            print(f"nothing to transcode: every stream has a video with {params.to_json()}")
            return 0
        progress = Progress(todo)
        pause = PauseWhileRecording(
            store.wal_dir,
            poll_s=args.poll,
            on_pause=lambda eps: progress.note(f"paused: attempt {', '.join(eps)} is being recorded"),
            on_resume=lambda: progress.note("resumed: no attempt is being recorded"),
        )
        video = jpeg = 0
        failed: list[str] = []
        for stream in todo:

            def between_frames(stream: StreamRef = stream) -> None:
                pause()
                progress.frame(stream)

            t0 = time.monotonic()
            try:
                done = transcode_stream(store, stream, params, between_frames)
            except (VideoError, EpisodeFileError) as exc:  # this stream cannot be transcoded; the others may
                failed.append(str(stream))
                progress.finished(stream, f"{stream}: not transcoded: {exc}")
                continue
            video, jpeg = video + done.video_bytes, jpeg + done.jpeg_bytes
            progress.finished(
                stream,
                f"{stream}: {stream.frames} frames -> {params.codec} {done.video_bytes / 1e6:.2f} MB "
                f"({done.video_bytes / max(1, done.jpeg_bytes):.1%} of its JPEG frames) "
                f"in {time.monotonic() - t0:.1f} s",
            )
    paused = f"; paused {pause.pauses} time(s) for attempts being recorded" if pause.pauses else ""
    print(
        f"transcoded {len(todo) - len(failed)} stream(s): {video / 1e6:.1f} MB of video "
        f"for {jpeg / 1e6:.1f} MB of JPEG{paused}"
    )
    if failed:
        print(
            f"error: {len(failed)} stream(s) could not be transcoded: {listing(failed)}",
            file=sys.stderr,
        )
        return 1
    return 0


def _seconds(text: str) -> float:
    try:
        s = float(text)
    except ValueError:
        s = -1.0
    if not 0.01 <= s <= 60:
        raise argparse.ArgumentTypeError(f"seconds in 0.01..60, got {text!r}")
    return s


def _whole(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"a whole number in {lo}..{hi}, got {text!r}") from None
        if not lo <= n <= hi:
            raise argparse.ArgumentTypeError(f"a whole number in {lo}..{hi}, got {n}")
        return n

    return parse


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register `data transcode` on the `data` group's subparsers."""
    p = sub.add_parser(
        "transcode",
        help="transcode recorded camera streams to video (kept beside the JPEG frames)",
        description="Transcode every camera stream not yet transcoded with these parameters to a video "
        "blob (H.264 or AV1 with a short keyframe interval; random access kept), at low priority, "
        "pausing while an attempt is being recorded into the store. Stopped, it resumes where it "
        "stopped when run again. The recorded JPEG frames are kept.",
    )
    p.add_argument("--codec", default="h264", metavar="NAME", help="h264 or av1 (default: h264)")
    p.add_argument(
        "--gop",
        type=_whole(1, 600),
        default=10,
        metavar="N",
        help="frames from one keyframe to the next: a random read decodes at most N (default: 10)",
    )
    p.add_argument(
        "--crf",
        type=_whole(0, 63),
        metavar="N",
        help="quality, lower is better and bigger (default: h264 23, av1 35)",
    )
    p.add_argument("--preset", metavar="NAME", help="encoder speed preset (default: h264 veryfast, av1 8)")
    p.add_argument("--episodes", nargs="+", metavar="ID", help="only these episodes (default: all)")
    p.add_argument(
        "--poll",
        type=_seconds,
        default=0.5,
        metavar="S",
        help="while paused, look for the end of the attempt every S seconds (default: 0.5)",
    )
    add_store_option(p)
    p.set_defaults(func=run_transcode)
    return p
