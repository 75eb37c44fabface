"""Save screenshots of the review screen into docs/review.png and docs/review-boundaries.png.

The real review window (offscreen, 1600x980) on attempts recorded by the simulated station with
the scripted operator taking over (``takeover run --headless --episodes 8 --operator scripted
--seed 11``, run here into a temporary store unless ``--store`` names one that holds such
attempts), a few of them labelled by two annotators (one disagreement), the cursor just after the
takeover of the attempt of seed 17 (else the first attempt) where boundary smoothing blends the
operator's first actions (an annotator moved that takeover two steps later and marked a
pre-intervention window). The screen is shown with ``action_jump_threshold = 0.3`` (the default is
0.5): the scripted operator's takeovers jump less than that.

Run from the repository root: ``QT_QPA_PLATFORM=offscreen MUJOCO_GL=egl python scripts/review_screenshots.py
[--store DIR] [--out DIR]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PyQt6.QtCore import QEventLoop
from PyQt6.QtWidgets import QApplication

from takeover.annotation.boundary_edits import edit_boundary
from takeover.annotation.labels import relabel
from takeover.annotation.params import SmoothingParams
from takeover.annotation.review_boundaries import load_hand_overs
from takeover.app.gui.review.window import ReviewOptions, ReviewWindow
from takeover.storage.label_revisions import Label
from takeover.storage.store import Store

ROOT = Path(__file__).resolve().parents[1]
SEED = 17
"""The attempt shown, if smoothing blends one of its takeovers (else the first that has one)."""
SMOOTHING = SmoothingParams(action_jump_threshold=0.3)
"""The smoothing the screen shows (``takeover review --smoothing-params``): the scripted operator
takes over with jumps below the default threshold of 0.5, which smoothing leaves alone."""


def shown_seed(store: Store) -> int:
    """The seed of the attempt to show: :data:`SEED`, else the lowest seed with a blended hand-over."""
    by_seed = {r.seed: r.episode_id for r in store.list_episodes() if r.seed is not None}
    for seed in sorted(by_seed, key=lambda s: (s != SEED, s)):
        episode = store.read_episode(by_seed[seed])
        if any(b.blended is not None for b in load_hand_overs(store, episode, SMOOTHING).items):
            return seed
    raise SystemExit("no attempt of the store has a hand-over that smoothing blends")


def record(store: Path) -> None:
    print("recording 8 attempts on the simulated station (about two minutes) …")
    takeover = [sys.executable, "-m", "takeover.app.cli"]
    subprocess.run([*takeover, "data", "init", "--store", str(store)], check=True)
    run = ["run", "--headless", "--episodes", "8", "--operator", "scripted", "--operator-name", "ada"]
    subprocess.run([*takeover, *run, "--seed", "11", "--store", str(store)], check=True)


def label(store_root: Path) -> None:
    with Store.open(store_root) as store:
        by_seed = {r.seed: r.episode_id for r in store.list_episodes()}
        seed = shown_seed(store)
        if not store.boundaries.current([by_seed[seed]]):
            # the takeover smoothing blends: the operator reacted two steps late, and the policy
            # was going wrong eight steps before
            shown = store.read_episode(by_seed[seed])
            blended = next(b for b in load_hand_overs(store, shown, SMOOTHING).items if b.blended is not None)
            at, kind = blended.boundary.step, blended.boundary.kind.value
            edit_boundary(
                store, by_seed[seed], kind, at, step=at + 2, pre_window_start=at - 8, annotator="cy"
            )
        if any(h.annotator == "cy" for heads in store.labels.heads().values() for h in heads):
            return
        relabel(store, by_seed[11], Label(outcome="success", quality="clean"), annotator="cy")
        relabel(store, by_seed[12], Label(outcome="failure", failure_category="stuck"), annotator="cy")
        relabel(store, by_seed[13], Label(outcome="near_success", progress=80), annotator="cy")
        relabel(store, by_seed[13], Label(outcome="failure", failure_category="timeout"), annotator="dee")
        relabel(store, by_seed[14], Label(outcome="success", quality="clean"), annotator="dee")


def _wait(app: QApplication, done: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit("the review window did not get there in time")
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 10)


def _settle(app: QApplication, seconds: float = 0.5) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 10)


def shoot(store_root: Path, out: Path) -> None:
    with Store.open(store_root) as store:
        seed = shown_seed(store)
    app = QApplication(sys.argv[:1])
    options = ReviewOptions(open_store=lambda: Store.open(store_root), annotator="cy", smoothing=SMOOTHING)
    window = ReviewWindow(options)
    window.start()
    window.show()
    _wait(app, lambda: window.listing is not None and window.episode is not None)
    assert window.listing is not None
    target = next(r.episode_id for r in window.listing.rows.values() if r.record.seed == seed)
    window.list_panel.select(window.list_panel.model.position(target) or 0)
    _wait(app, lambda: window.episode is not None and window.episode.episode_id == target)
    _wait(app, lambda: window.boundaries.hand_overs is not None)
    items = window.boundaries.hand_overs.items if window.boundaries.hand_overs else ()
    blended = next((i for i, item in enumerate(items) if item.blended is not None), 0)
    window.boundaries.picker.setCurrentIndex(blended)
    window.seek(items[blended].boundary.step + 3 if items else 0)
    _wait(app, lambda: all(v.painted_step == window.at_step for v in window.cameras.views.values()))
    window.show_message("")  # it names the store's folder, a path of this machine
    _settle(app)
    out.mkdir(parents=True, exist_ok=True)
    for name, tab in (("review.png", 0), ("review-boundaries.png", 1)):
        window.tabs.setCurrentIndex(tab)
        _settle(app)
        path = out / name
        if not window.grab().save(str(path)):
            raise SystemExit(f"could not write {path}")
        print(f"saved {path}")
    window.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", metavar="DIR", help="a store holding the attempts (made if missing)")
    parser.add_argument("--out", default=str(ROOT / "docs"), metavar="DIR")
    args = parser.parse_args()
    store = (
        Path(args.store) if args.store else Path(tempfile.mkdtemp(prefix="takeover-review-shots-")) / "store"
    )
    if not store.exists():
        record(store)
    label(store)
    shoot(store, Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
