"""The review screen, driven through its real widgets and keys against a real store: labelling a
batch by keys alone (checked from another store connection), frame-exact scrubbing across three
cameras (pixels compared with the JPEG decoded here), filters, the disagreement queue, playing,
the boundaries view, closing mid-label, and errors shown in the window."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PyQt6.QtCore import Qt

from takeover.annotation.labels import disagreement_queue, relabel, resolve_many
from takeover.annotation.review_model import ReviewFilter
from takeover.app.gui.review.cameras import BACKGROUND
from takeover.app.gui.review.window import ReviewOptions, ReviewWindow
from takeover.storage.jpeg import decode_rgb
from takeover.storage.label_revisions import Label
from takeover.storage.schema import TimedStream
from takeover.storage.store import Store
from takeover.storage.testing import frames_in_a_log, make_episode

pytestmark = pytest.mark.gui

CAMERAS = ("front", "side", "wrist")
FRAME_EVERY = {"front": 1, "side": 2, "wrist": 3}
FIRST_FRAME = {"front": 0, "side": 2, "wrist": 5}
N_PLAIN = 21
"""Episodes without cameras (catalog and low-dimensional data only)."""


def _camera_episode(episode_id: str, seed: int, log_dir: Path) -> Any:
    ep = make_episode(episode_id, 60, seed=seed, cameras=(), takeover_at=20, image_size=(48, 64))
    for ci, cam in enumerate(CAMERAS):
        one = make_episode(
            episode_id,
            60,
            seed=seed,
            cameras=(cam,),
            frame_every=FRAME_EVERY[cam],
            first_frame_step=FIRST_FRAME[cam],
            image_size=(48, 64),
        )
        stream = one.cameras[cam]
        # distinct pixels per camera: make_episode colours by camera index, here always 0
        stream.frames = [_recolour(f, ci) for f in stream.frames]
        ep.cameras[cam] = stream
    frames_in_a_log(ep, "side", log_dir / f"{episode_id}-side.log")  # one camera in a frame blob
    ep.streams["value"] = TimedStream(ep.timestamps[::2] + 0.01, np.linspace(-1.0, 0.0, 30)[:, None])
    return ep


def _recolour(jpeg: bytes, camera_index: int) -> bytes:
    from takeover.storage.testing import encode_rgb_jpeg

    rgb = decode_rgb(jpeg)
    rgb[..., 1] = (90 * camera_index + 30) % 256
    return encode_rgb_jpeg(rgb)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store: two episodes with three cameras (a takeover at step 20), then plain ones of two
    tasks, two operators, with and without takeovers; one failure."""
    root = tmp_path_factory.mktemp("review") / "store"
    with Store.create(root) as store:
        for i in range(2):
            store.add_episode(_camera_episode(f"cam-{i}", i, root.parent))
        for i in range(N_PLAIN):
            ep = make_episode(
                f"ep-{i:02d}",
                30,
                seed=10 + i,
                cameras=(),
                takeover_at=12 if i % 3 == 0 else None,
                task="stack" if i < 14 else "pour",
                outcome="failure" if i == 5 else "success",
            )
            ep.meta = replace(ep.meta, operator="ada" if i % 2 else "bo")
            store.add_episode(ep)
    return root


@pytest.fixture
def store_root(template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "store"
    shutil.copytree(template, root)
    return root


def _open(
    qtbot: Any, root: Path, annotator: str = "cy", flt: ReviewFilter | None = None, wait: bool = True
) -> ReviewWindow:
    options = ReviewOptions(
        open_store=lambda: Store.open(root), annotator=annotator, filter=flt or ReviewFilter()
    )
    window = ReviewWindow(options)
    qtbot.addWidget(window)
    window.start()
    with qtbot.waitExposed(window):
        window.show()
    if wait:
        qtbot.waitUntil(lambda: window.listing is not None and window.episode is not None, timeout=5000)
    return window


@pytest.fixture
def window(qtbot: Any, store_root: Path) -> Iterator[ReviewWindow]:
    yield _open(qtbot, store_root)


def _ids(window: ReviewWindow) -> list[str]:
    return [r.episode_id for r in window.list_panel.model.rows]


def test_a_batch_of_20_is_labelled_with_keys_alone(
    qtbot: Any, window: ReviewWindow, store_root: Path
) -> None:
    batch = _ids(window)[:20]
    assert window.current == batch[0]
    keys = [Qt.Key.Key_1, Qt.Key.Key_2, Qt.Key.Key_3, Qt.Key.Key_1]
    outcomes = {Qt.Key.Key_1: "success", Qt.Key.Key_2: "near_success", Qt.Key.Key_3: "failure"}
    expected = {}
    for i, episode_id in enumerate(batch):
        key = keys[i % len(keys)]
        if i == 0:
            qtbot.keyClick(window, Qt.Key.Key_Q)  # quality: clean
        if i == 2:
            qtbot.keyClick(window, Qt.Key.Key_C)  # the first failure category
        qtbot.keyClick(window, key)
        expected[episode_id] = outcomes[key]
    assert window.current == _ids(window)[20]  # moved on after each label
    qtbot.waitUntil(lambda: window.writer is not None and window.writer.waiting == 0, timeout=5000)
    qtbot.waitUntil(lambda: all(window.listing.rows[e].mine is not None for e in batch), timeout=5000)  # type: ignore[union-attr]

    with Store.open(store_root) as other:  # another connection sees every revision
        heads = other.labels.heads(batch)
    mine = {e: next(h for h in heads[e] if h.annotator == "cy") for e in batch}
    assert {e: r.outcome for e, r in mine.items()} == expected
    assert mine[batch[0]].quality == "clean"
    assert mine[batch[2]].failure_category == "missed_grasp"
    assert all(r.role == "annotator" and r.parent_id is not None for r in mine.values())
    model = window.list_panel.model
    row = model.rows[model.position(batch[1])]  # type: ignore[index]
    assert row.outcome == "near_success" and row.source == "annotator"
    assert "saved revision" in window.label_panel.status.text()


def _frame_of(ep: Any, camera: str, step: int) -> int | None:
    steps = ep.cameras[camera].step_index
    before = np.flatnonzero(steps <= step)
    return int(before[-1]) if before.size else None


def _check_frames(qtbot: Any, window: ReviewWindow, store_root: Path, step: int) -> None:
    qtbot.waitUntil(
        lambda: window.at_step == step and all(v.step == step for v in window.cameras.views.values()),
        timeout=3000,
    )
    with Store.open(store_root) as other:
        raw = other.read_episode(window.current or "")
        for camera, view in window.cameras.views.items():
            index = _frame_of(raw, camera, step)
            assert view.index == index, (camera, step)
            if index is None:
                assert view.image is None and view.pixels is None and view.caption() == camera
                painted = view.grab().toImage().pixelColor(view.rect().center())
                assert painted.name() == BACKGROUND.name()  # the placeholder, not a stale frame
                continue
            expected = decode_rgb(raw.cameras[camera].frames[index])
            assert np.array_equal(view.pixels, expected), (camera, step)
            shown = view.image
            assert shown is not None
            bits = shown.constBits()
            assert bits is not None
            bits.setsize(shown.sizeInBytes())
            on_screen = np.frombuffer(bits, np.uint8).reshape(shown.height(), shown.bytesPerLine())
            assert np.array_equal(on_screen[:, : 3 * shown.width()].reshape(expected.shape), expected)
            centre = view.picture_rect().center()
            painted = view.grab().toImage().pixelColor(centre)
            assert abs(painted.red() - int(expected[24, 32, 0])) <= 3, (camera, step)


def test_scrubbing_is_frame_exact_across_all_cameras(
    qtbot: Any, window: ReviewWindow, store_root: Path
) -> None:
    assert window.current == "cam-0"
    assert list(window.cameras.views) == list(CAMERAS)
    _check_frames(qtbot, window, store_root, 0)
    assert window.cameras.views["wrist"].index is None  # its first frame comes at step 5
    for _ in range(3):
        qtbot.keyClick(window, Qt.Key.Key_Right)
    _check_frames(qtbot, window, store_root, 3)
    qtbot.keyClick(window, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)  # one second: 10 steps
    _check_frames(qtbot, window, store_root, 13)
    qtbot.keyClick(window, Qt.Key.Key_Left)
    _check_frames(qtbot, window, store_root, 12)
    qtbot.keyClick(window, Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier)
    _check_frames(qtbot, window, store_root, 2)
    qtbot.keyClick(window, Qt.Key.Key_G)
    assert window.transport.step_box.hasFocus() or window.focusWidget() is window.transport.step_box
    qtbot.keyClicks(window.transport.step_box, "41")
    qtbot.keyClick(window.transport.step_box, Qt.Key.Key_Return)
    _check_frames(qtbot, window, store_root, 41)
    assert window.plots.cursor_step() == 41 and window.timeline.at_step == 41
    qtbot.keyClick(window, Qt.Key.Key_End)
    _check_frames(qtbot, window, store_root, 59)
    qtbot.keyClick(window, Qt.Key.Key_Home)
    _check_frames(qtbot, window, store_root, 0)
    # a click on the timeline seeks
    timeline = window.timeline
    qtbot.mouseClick(timeline, Qt.MouseButton.LeftButton, pos=timeline.rect().center())
    qtbot.waitUntil(lambda: 25 <= window.at_step <= 34, timeout=2000)


def test_filters_narrow_the_list(qtbot: Any, window: ReviewWindow) -> None:
    filters = window.list_panel.filters
    assert len(_ids(window)) == 2 + N_PLAIN
    filters.combos["task"].setCurrentText("pour")
    assert _ids(window) == [f"ep-{i:02d}" for i in range(14, N_PLAIN)]
    assert window.list_panel.count.text() == f"7 of {2 + N_PLAIN} episodes"
    filters.combos["operator"].setCurrentText("bo")
    assert _ids(window) == ["ep-14", "ep-16", "ep-18", "ep-20"]
    filters.intervention.setCurrentText("with takeovers")
    assert _ids(window) == ["ep-18"]
    filters.combos["task"].setCurrentText("any")
    filters.combos["operator"].setCurrentText("any")
    filters.intervention.setCurrentText("any")
    filters.label.setCurrentText("failure")
    assert _ids(window) == ["ep-05"]
    assert window.current == "ep-05"  # the selection follows the list
    filters.label.setCurrentText("any")
    filters.since.setDate(filters.since.date().addYears(100))
    assert _ids(window) == []
    assert window.list_panel.count.text() == f"0 of {2 + N_PLAIN} episodes"


def test_the_disagreement_queue(qtbot: Any, store_root: Path) -> None:
    with Store.open(store_root) as store:
        relabel(store, "ep-03", Label(outcome="success"), annotator="dee")
        relabel(store, "ep-03", Label(outcome="failure"), annotator="eve")
        relabel(store, "ep-04", Label(outcome="failure"), annotator="dee")
        relabel(store, "ep-04", Label(outcome="failure"), annotator="eve")
    window = _open(qtbot, store_root, annotator="lee")
    window.list_panel.filters.disagreement.setChecked(True)
    assert _ids(window) == ["ep-03"]
    assert "DISAGREEMENT" in window.timeline.label_text
    window.list_panel.filters.combos["annotator"].setCurrentText("dee")
    assert _ids(window) == ["ep-03"]
    window.list_panel.filters.disagreement.setChecked(False)
    assert _ids(window) == ["ep-03", "ep-04"]


def test_a_lead_resolves_a_disagreement_by_keyboard(qtbot: Any, store_root: Path) -> None:
    """Two annotators disagree on ep-03; the lead, reviewing the queue, presses 2: the lead's
    near-success counts, another connection sees it, and the queue is empty."""
    with Store.open(store_root) as store:
        relabel(store, "ep-03", Label(outcome="success"), annotator="dee")
        relabel(store, "ep-03", Label(outcome="failure"), annotator="eve")
    options = ReviewOptions(
        open_store=lambda: Store.open(store_root),
        annotator="lee",
        role="lead",
        filter=ReviewFilter(disagreement=True),
    )
    window = ReviewWindow(options)
    qtbot.addWidget(window)
    window.start()
    with qtbot.waitExposed(window):
        window.show()
    qtbot.waitUntil(lambda: window.listing is not None and window.current == "ep-03", timeout=5000)
    assert _ids(window) == ["ep-03"]
    qtbot.keyClick(window, Qt.Key.Key_2)
    qtbot.waitUntil(lambda: "saved revision" in window.label_panel.status.text(), timeout=5000)
    with Store.open(store_root) as other:
        res = resolve_many(other, ["ep-03"])["ep-03"]
        assert (res.outcome, res.source, res.label.annotator) == ("near_success", "lead", "lee")
        assert disagreement_queue(other) == []
    window.list_panel.filters.disagreement.setChecked(False)
    window.list_panel.filters.disagreement.setChecked(True)
    qtbot.waitUntil(lambda: _ids(window) == [], timeout=5000)


def test_the_list_starts_with_the_command_line_filters(qtbot: Any, store_root: Path) -> None:
    window = _open(qtbot, store_root, flt=ReviewFilter(task="pour", intervention=False))
    assert _ids(window) == ["ep-14", "ep-16", "ep-17", "ep-19", "ep-20"]
    assert window.list_panel.filters.combos["task"].currentText() == "pour"


def test_play_advances_at_the_chosen_speed_and_pauses(qtbot: Any, window: ReviewWindow) -> None:
    qtbot.keyClick(window, Qt.Key.Key_BracketRight)  # 2x
    assert window.transport.speed_box.currentText() == "2×"
    started = time.monotonic()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.transport.playing
    qtbot.waitUntil(lambda: window.at_step >= 10, timeout=3000)  # 10 steps at 10 Hz x 2: 0.5 s
    assert time.monotonic() - started >= 0.45
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not window.transport.playing
    paused_at = window.at_step
    qtbot.wait(150)
    assert window.at_step == paused_at
    qtbot.waitUntil(lambda: all(v.step == paused_at for v in window.cameras.views.values()), timeout=2000)


def test_the_boundaries_view_shows_raw_beside_smoothed(qtbot: Any, window: ReviewWindow) -> None:
    view = window.boundaries
    qtbot.waitUntil(lambda: view.hand_overs is not None, timeout=5000)
    assert view.picker.count() == 1 and "takeover at step 20" in view.picker.currentText()
    assert view.origin.text().startswith("smoothed: computed now")
    assert view.raw.listDataItems() and view.smoothed.listDataItems()
    qtbot.keyClick(window, Qt.Key.Key_B)
    assert window.tabs.currentWidget() is view
    qtbot.mouseClick(view.go, Qt.MouseButton.LeftButton)
    assert window.at_step == 20


def test_a_boundary_is_moved_and_its_window_marked_in_the_boundaries_view(
    qtbot: Any, window: ReviewWindow, store_root: Path
) -> None:
    """The takeover at step 20 made to count from 17, with the pre-intervention window from 12:
    a revision another connection sees, and the view shows the edit; a step outside the segment
    cannot be chosen; the recorded control source is kept."""
    view = window.boundaries
    qtbot.waitUntil(lambda: view.hand_overs is not None and view.save.isEnabled(), timeout=5000)
    episode_id = window.current
    qtbot.keyClick(window, Qt.Key.Key_B)  # the boundaries tab
    assert window.tabs.currentWidget() is view
    assert view.step_box.value() == 20 and view.step_box.minimum() == 1
    assert view.window_on.isEnabled() and not view.window_on.isChecked()
    view.step_box.setValue(17)
    qtbot.mouseClick(view.window_on, Qt.MouseButton.LeftButton)
    assert view.window_box.isEnabled()
    view.window_box.setValue(12)
    qtbot.mouseClick(view.save, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "saved boundary edit" in window.message.text(), timeout=5000)
    with Store.open(store_root) as other:
        (edit,) = other.boundaries.current([episode_id])[episode_id]
        assert (edit.kind, edit.recorded_step, edit.step, edit.pre_window_start) == ("takeover", 20, 17, 12)
        assert edit.annotator == "cy" and edit.role == "annotator"
        recorded = other.read_episode(episode_id).control_source
    qtbot.waitUntil(lambda: view.current() is not None and view.current().edit is not None, timeout=5000)
    assert "moved to 17" in view.picker.currentText() and view.step_box.value() == 17
    assert view.window_on.isChecked() and view.window_box.value() == 12
    assert int(recorded[19]) == int(window.episode.episode.control_source[19])  # who drove is kept
    view.step_box.setValue(10**6)  # past the end: held to the last step
    assert view.step_box.value() == view.step_box.maximum() == window.episode.episode.num_steps - 1


def test_closing_mid_write_keeps_the_label(qtbot: Any, window: ReviewWindow, store_root: Path) -> None:
    blocker = sqlite3.connect(store_root / "catalog.db", isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")  # the writer waits for this lock
    episode_id = window.current
    qtbot.keyClick(window, Qt.Key.Key_3)
    assert window.writer is not None and window.writer.waiting == 1
    release = threading.Timer(0.3, lambda: blocker.execute("ROLLBACK"))
    release.start()
    began = time.monotonic()
    window.close()  # waits for the writer
    assert time.monotonic() - began >= 0.25
    release.join()
    blocker.close()
    with Store.open(store_root) as other:
        heads = other.labels.heads([episode_id or ""])[episode_id or ""]
    assert [h.outcome for h in heads if h.annotator == "cy"] == ["failure"]


def test_a_store_that_does_not_open_is_said_in_the_window(qtbot: Any, tmp_path: Path) -> None:
    window = _open(qtbot, tmp_path / "nowhere", wait=False)
    qtbot.waitUntil(lambda: window.alert.isVisible(), timeout=3000)
    assert "the store could not be opened: no dataset store at" in window.alert.text()
    qtbot.keyClick(window, Qt.Key.Key_1)  # nothing to label: said, not raised
    assert window.current is None


def test_a_missing_episode_file_is_said_in_the_window(
    qtbot: Any, window: ReviewWindow, store_root: Path
) -> None:
    with Store.open(store_root) as store:
        digest = store.get_episode("ep-02").blob_digest
        next(p for p in (store_root / "blobs").rglob(digest)).unlink()
    at = window.list_panel.model.position("ep-02")
    window.list_panel.select(at or 0)
    qtbot.waitUntil(lambda: window.problem.isVisible(), timeout=3000)
    assert "episode ep-02:" in window.problem.text() and "missing" in window.problem.text()
    qtbot.keyClick(window, Qt.Key.Key_2)  # it can still be labelled
    qtbot.waitUntil(lambda: window.listing.rows["ep-02"].mine is not None, timeout=3000)  # type: ignore[union-attr]


def test_the_command_line_filters_and_its_errors(tmp_path: Path) -> None:
    import datetime
    import os
    import subprocess
    import sys

    from takeover.app.cli.main import build_parser
    from takeover.app.cli.review import review_filter

    named = ["--task", "pour", "--label", "none", "--interventions", "no", "--labelled-by", "dee"]
    args = build_parser().parse_args(
        ["review", *named, "--since", "2024-01-02", "--until", "2024-01-03", "--todo"]
    )
    flt = review_filter(args)
    day = datetime.datetime(2024, 1, 2).timestamp()
    assert (flt.task, flt.label, flt.intervention, flt.annotator, flt.todo) == (
        "pour",
        "",
        False,
        "dee",
        True,
    )
    assert (flt.since, flt.until) == (day, day + 2 * 86400)
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    command = [sys.executable, "-m", "takeover.app.cli", "review", "--store", str(tmp_path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no display available for the review screen" in done.stderr
    done = subprocess.run([*command, "--sort", "nope"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "invalid choice: 'nope'" in done.stderr


@pytest.mark.postgres
def test_a_fleet_store_scrubs_and_labels(qtbot: Any, tmp_path: Path, s3_url: str) -> None:
    """PostgreSQL catalog, frames in S3: the worker threads read and write it as they do a folder."""
    from takeover.storage.testing_postgres import POSTGRES_URL, postgres_test_schema

    with postgres_test_schema() as schema:
        kw: dict[str, Any] = {"catalog_schema": schema, "blob_url": s3_url}
        with Store.create(tmp_path / "store", POSTGRES_URL, **kw) as store:
            store.add_episode(_camera_episode("cam-0", 0, tmp_path))
            store.add_episode(make_episode("ep-00", 10, cameras=()))
        window = ReviewWindow(
            ReviewOptions(
                open_store=lambda: Store.open(tmp_path / "store", POSTGRES_URL, **kw), annotator="cy"
            )
        )
        qtbot.addWidget(window)
        window.start()
        window.show()
        qtbot.waitUntil(lambda: window.episode is not None, timeout=10000)
        window.seek(7)
        qtbot.waitUntil(lambda: all(v.step == 7 for v in window.cameras.views.values()), timeout=5000)
        assert {c: v.index for c, v in window.cameras.views.items()} == {"front": 7, "side": 2, "wrist": 0}
        qtbot.keyClick(window, Qt.Key.Key_2)
        window.close()  # the label is written before the window goes
        with Store.open(tmp_path / "store", POSTGRES_URL, **kw) as other:
            heads = other.labels.heads(["cam-0"])["cam-0"]
        assert [h.outcome for h in heads if h.annotator == "cy"] == ["near_success"]


def test_notes_keep_their_digits_and_the_keys_come_back(
    qtbot: Any, window: ReviewWindow, store_root: Path
) -> None:
    episode_id = window.current
    qtbot.keyClick(window, Qt.Key.Key_N)
    notes = window.label_panel.notes
    assert notes.hasFocus()
    qtbot.keyClicks(notes, "cube 1 fell at 3 s")
    assert window.writer is not None and window.writer.waiting == 0  # the digits were text
    qtbot.keyClick(notes, Qt.Key.Key_Return)
    assert not notes.hasFocus()
    qtbot.keyClick(window, Qt.Key.Key_3)
    qtbot.waitUntil(lambda: window.writer is not None and window.writer.waiting == 0, timeout=3000)
    with Store.open(store_root) as other:
        (mine,) = [h for h in other.labels.heads([episode_id or ""])[episode_id or ""] if h.annotator == "cy"]
    assert (mine.outcome, mine.notes) == ("failure", "cube 1 fell at 3 s")


def test_a_label_that_cannot_be_saved_is_said_until_one_is(
    qtbot: Any, window: ReviewWindow, store_root: Path
) -> None:
    with Store.open(store_root) as other:  # `gc` takes ep-03 out of the catalog meanwhile
        other.delete_episodes(["ep-03"])
        assert other.catalog.forget_episodes(["ep-03"], deleted_before=time.time() + 1) == ["ep-03"]
    window.list_panel.select(window.list_panel.model.position("ep-03") or 0)
    qtbot.waitUntil(lambda: window.problem.isVisible(), timeout=3000)  # its file is not in the catalog
    qtbot.keyClick(window, Qt.Key.Key_1)
    qtbot.waitUntil(lambda: window.alert.isVisible(), timeout=3000)
    assert window.alert.text().startswith("the label of ep-03 was not saved: no such episode")
    assert "NOT saved" in window.label_panel.status.text()
    assert window.current == "ep-04" and window.alert.isVisible()  # moving on does not hide it
    qtbot.keyClick(window, Qt.Key.Key_1)
    qtbot.waitUntil(lambda: not window.alert.isVisible(), timeout=3000)
    assert window.listing is not None and window.listing.rows["ep-03"].mine is None
