"""The review screen's speed: scrubbing across three 640x480 cameras, and key-to-saved-label latency.

On a store of 1,000 episodes (``--camera-episodes`` of them with three 640x480 camera streams, a
frame at every step, kept in frame blobs as the recorder keeps them; the rest catalog and
low-dimensional data only), the real review window (offscreen Qt, 1600x980) is driven as an
annotator drives it, and this prints:

- **sequential scrubbing**: → pressed, then the next press as soon as all three views have painted
  the new step's frames; steps shown per second (each step is three camera frames);
- **random jumps**: the cursor sent to a random step (as a typed step number does), then the next
  as soon as all three views have painted it; jumps shown per second;
- **key to saved label**: a digit key pressed until the revision is committed and visible to
  another Store connection (polled every 0.3 ms by a process of its own, so the observer shares
  no interpreter lock with the window), the window moving on to the next episode each time;
  p50 / p99 / max over ``--labels`` labels, twice: the next key pressed once the next episode is
  on screen (an annotator looks before labelling), and keys back to back (as fast as the labels
  are written, the next episodes loading meanwhile).

Targets (issue 11): sequential >= 30 steps/s, random >= 15/s, label p99 <= 50 ms (both ways);
each printed with whether it is met.

Run: ``QT_QPA_PLATFORM=offscreen python bench/review.py [--episodes 1000] [--camera-episodes 3]
[--steps 300] [--labels 200] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
from PyQt6.QtCore import QEventLoop, Qt
from PyQt6.QtTest import QTest
from PyQt6.QtWidgets import QApplication
from sqlalchemy import text

from takeover.app.gui.review.window import ReviewOptions, ReviewWindow
from takeover.storage.schema import TimedStream
from takeover.storage.store import Store
from takeover.storage.testing import encode_rgb_jpeg, frames_in_a_log, make_episode, moving_scene

SEQUENTIAL_TARGET = 30.0
RANDOM_TARGET = 15.0
LABEL_P99_TARGET_MS = 50.0
CAMERAS = ("front", "side", "wrist")


def build_store(root: Path, episodes: int, camera_episodes: int, steps: int) -> None:
    """``episodes`` episodes; the first ``camera_episodes`` with three 640x480 cameras."""
    print(f"building a store of {episodes} episodes ({camera_episodes} with 3 cameras at 640x480) …")
    began = time.perf_counter()
    scene = [encode_rgb_jpeg(f, 90) for f in moving_scene(steps, 480, 640, seed=1)]
    logs = root.parent / "logs"
    logs.mkdir(exist_ok=True)
    with Store.create(root) as store:
        for i in range(episodes):
            with_cams = i < camera_episodes
            ep = make_episode(
                f"ep-{i:04d}",
                steps if with_cams else 100,
                seed=i,
                cameras=CAMERAS if with_cams else (),
                frame_every=1,
                image_size=(480, 640) if with_cams else (8, 16),
                takeover_at=steps // 3 if i % 4 == 0 else None,
                task=("stack the red cube", "open the drawer", "pour")[i % 3],
            )
            if with_cams:
                for k, cam in enumerate(CAMERAS):
                    # each camera its own view of the scene (shifted in time), in a frame blob
                    ep.cameras[cam].frames = [scene[(j + 37 * k) % steps] for j in range(steps)]
                    frames_in_a_log(ep, cam, logs / f"{ep.meta.episode_id}-{cam}.log")
                ep.streams["value"] = TimedStream(ep.timestamps.copy(), np.linspace(-1, 0, steps)[:, None])
            store.add_episode(ep)
    print(f"  built in {time.perf_counter() - began:.1f} s")


def _wait(app: QApplication, done: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.perf_counter() + timeout_s
    while not done():
        if time.perf_counter() > deadline:
            raise SystemExit("the review window did not answer in time")
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)


def _painted(window: ReviewWindow, step: int) -> bool:
    views = window.cameras.views.values()
    return bool(views) and all(v.painted_step == step for v in views)


def scrub_sequential(app: QApplication, window: ReviewWindow, count: int) -> float:
    window.seek(0)
    _wait(app, lambda: _painted(window, 0))
    began = time.perf_counter()
    for step in range(1, count + 1):
        QTest.keyClick(window, Qt.Key.Key_Right)
        _wait(app, lambda step=step: _painted(window, step))
    return count / (time.perf_counter() - began)


def scrub_random(app: QApplication, window: ReviewWindow, count: int, last: int) -> float:
    rng = random.Random(7)
    targets = [rng.randrange(0, last + 1) for _ in range(count)]
    began = time.perf_counter()
    for step in targets:
        if step == window.at_step:
            step = (step + last // 2) % (last + 1)
        window.seek(step)
        _wait(app, lambda step=step: _painted(window, step))
    return count / (time.perf_counter() - began)


def observe(root: Path) -> None:
    """In a process of its own (no GIL shared with the window): poll another Store connection for
    new label revisions; print ``id monotonic_time`` for each as soon as it is visible."""
    with Store.open(root) as store:
        last = _newest(store)
        print("ready", flush=True)
        while True:
            newest = _newest(store)
            if newest > last:
                now = time.monotonic()
                for rev in range(last + 1, newest + 1):
                    print(f"{rev} {now:.6f}", flush=True)
                last = newest
            time.sleep(0.0003)


def _newest(store: Store) -> int:
    with store.catalog.engine.connect() as conn:
        return int(conn.execute(text("SELECT coalesce(max(id), 0) FROM label_revisions")).scalar_one())


class Observer:
    """The observing process and the times it saw each new revision."""

    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--observe", str(root)], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise SystemExit("the observing process did not start")
        self.seen: list[float] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.seen.append(float(line.split()[1]))

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def label_latency(
    app: QApplication, window: ReviewWindow, observer: Observer, count: int, paced: bool
) -> list[float]:
    """Press a digit ``count`` times (the window moves on after each); the next press comes when
    the label is written and, if ``paced``, when the next episode is on screen (an annotator
    looks before labelling). Returns key-to-visible times (ms)."""
    keys = (Qt.Key.Key_1, Qt.Key.Key_2, Qt.Key.Key_3)
    pressed = []
    first = len(observer.seen)
    for i in range(count):
        if paced:
            _wait(app, lambda: window.episode is not None and window.episode.episode_id == window.current)
            _wait(app, lambda: window.plots.episode is window.episode)
        pressed.append(time.monotonic())
        QTest.keyClick(window, keys[i % 3])
        _wait(app, lambda i=i: len(observer.seen) >= first + i + 1)
    return [(seen - t) * 1000.0 for t, seen in zip(pressed, observer.seen[first:], strict=True)]


def _latency_row(name: str, ms: list[float]) -> tuple[str, str, str, bool]:
    p50, p99 = statistics.median(ms), float(np.percentile(ms, 99))
    return (
        f"{name} (p50 {p50:.1f}, max {max(ms):.1f} ms)",
        f"p99 {p99:5.1f} ms",
        f"<= {LABEL_P99_TARGET_MS:g} ms",
        p99 <= LABEL_P99_TARGET_MS,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--camera-episodes", type=int, default=3)
    parser.add_argument(
        "--steps", type=int, default=300, help="steps (and frames per camera) of a camera episode"
    )
    parser.add_argument("--scrub", type=int, default=240, help="steps scrubbed, and random jumps")
    parser.add_argument("--labels", type=int, default=200)
    parser.add_argument("--keep", metavar="DIR", help="build the store here (kept; reused if it is there)")
    parser.add_argument("--observe", metavar="STORE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.observe:
        observe(Path(args.observe))
        return 0

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="takeover-review-bench-"))
    root = folder / "store"
    if not root.exists():
        folder.mkdir(parents=True, exist_ok=True)
        build_store(root, args.episodes, args.camera_episodes, args.steps)
    app = QApplication(sys.argv[:1])
    window = ReviewWindow(ReviewOptions(open_store=lambda: Store.open(root), annotator="bench"))
    window.start()
    window.show()
    _wait(app, lambda: window.listing is not None and window.episode is not None)
    assert window.listing is not None
    print(f"{len(window.listing.rows)} episodes listed; reviewing {window.current}")
    assert window.episode is not None and len(window.episode.cameras) == 3

    seq = scrub_sequential(app, window, min(args.scrub, window.episode.last_step))
    rnd = scrub_random(app, window, args.scrub, window.episode.last_step)
    frames = window.frames
    print(
        f"  frames decoded {frames.reader.decoded}, cache {len(frames.reader.cache)} frames "
        f"({frames.reader.cache.bytes / 1e6:.0f} MB), stale requests dropped {frames.dropped}"
    )

    window.list_panel.select(args.camera_episodes)  # label the catalog-only episodes, one after another
    observer = Observer(root)
    try:
        paced = label_latency(app, window, observer, args.labels, paced=True)
        rapid = label_latency(app, window, observer, args.labels, paced=False)
    finally:
        observer.close()
    window.close()

    rows = [
        (
            "sequential scrubbing (→), 3 cameras 640x480",
            f"{seq:6.1f} steps/s",
            f">= {SEQUENTIAL_TARGET:g}",
            seq >= SEQUENTIAL_TARGET,
        ),
        (
            "random jumps, 3 cameras 640x480",
            f"{rnd:6.1f} jumps/s",
            f">= {RANDOM_TARGET:g}",
            rnd >= RANDOM_TARGET,
        ),
        _latency_row("key to saved label, next episode on screen first", paced),
        _latency_row("key to saved label, keys back to back", rapid),
    ]
    print()
    width = max(len(name) for name, *_ in rows)
    for name, value, target, met in rows:
        print(f"{name:<{width}}  {value:>15}   target {target:<9} {'met' if met else 'NOT MET'}")
    return 0 if all(met for *_, met in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
