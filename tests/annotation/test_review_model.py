"""The review screen's Qt-free logic against a real store: the episode list (two catalog queries,
filters, sorting, one row updated after a label), frames by step across cameras, the frame cache
and prefetch, the newest-request mailbox, and the hand-overs raw beside smoothed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event

from takeover.annotation.boundary_edits import edit_boundary
from takeover.annotation.derivations import smooth_and_store
from takeover.annotation.labels import relabel
from takeover.annotation.params import SmoothingParams
from takeover.annotation.review_boundaries import load_hand_overs
from takeover.annotation.review_episode import load_review_episode, segments
from takeover.annotation.review_frames import FrameCache, FrameReader, Latest, prefetch_steps
from takeover.annotation.review_model import COLUMN_NAMES, ReviewFilter, ReviewList
from takeover.storage.jpeg import decode_rgb
from takeover.storage.label_revisions import Label
from takeover.storage.schema import ControlSource, TimedStream
from takeover.storage.store import Store
from takeover.storage.testing import frames_in_a_log, make_episode


@pytest.fixture
def store(any_store: Store) -> Iterator[Store]:
    """Six episodes of two tasks, two operators and two stations, every other one with a takeover,
    one failure; in each catalog and blob store the suite runs against."""
    for i in range(6):
        ep = make_episode(
            f"ep-{i}",
            20,
            seed=i,
            cameras=(),
            takeover_at=8 if i % 2 else None,
            outcome="failure" if i == 5 else "success",
            task="stack" if i < 3 else "pour",
        )
        ep.meta = replace(ep.meta, operator="ada" if i < 4 else "bo", station=f"sim-{i % 2}")
        any_store.add_episode(ep)
    yield any_store


def test_the_list_costs_two_catalog_queries_whatever_its_length(store: Store) -> None:
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(statement)

    event.listen(store.catalog.engine, "before_cursor_execute", count)
    try:
        listing = ReviewList.load(store, annotator="cy")
    finally:
        event.remove(store.catalog.engine, "before_cursor_execute", count)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2
    assert list(listing.rows) == [f"ep-{i}" for i in range(6)]


def test_filters_narrow_the_list(store: Store) -> None:
    relabel(store, "ep-0", Label(outcome="near_success"), annotator="cy")
    relabel(store, "ep-1", Label(outcome="failure"), annotator="dee")
    listing = ReviewList.load(store, annotator="cy")

    def ids(**kw: object) -> list[str]:
        return [r.episode_id for r in listing.select(ReviewFilter(**kw))]  # type: ignore[arg-type]

    assert ids(task="pour") == ["ep-3", "ep-4", "ep-5"]
    assert ids(operator="bo") == ["ep-4", "ep-5"]
    assert ids(station="sim-1") == ["ep-1", "ep-3", "ep-5"]
    assert ids(label="failure") == ["ep-1", "ep-5"]
    assert ids(label="near_success") == ["ep-0"]
    assert ids(annotator="dee") == ["ep-1"]
    assert ids(intervention=True) == ["ep-1", "ep-3", "ep-5"]
    assert ids(intervention=False, task="stack") == ["ep-0", "ep-2"]
    started = {r.episode_id: r.record.started_at for r in listing.rows.values()}
    assert ids(since=started["ep-2"], until=started["ep-4"]) == ["ep-2", "ep-3"]
    assert ids(todo=True) == ["ep-1", "ep-2", "ep-3", "ep-4", "ep-5"]
    assert ids(policy="nope") == []
    assert listing.choices()["annotator"] == ["ada", "bo", "cy", "dee"]
    assert listing.choices()["station"] == ["sim-0", "sim-1"]


def test_the_disagreement_filter_and_a_lead_settling_it(store: Store) -> None:
    relabel(store, "ep-2", Label(outcome="success"), annotator="cy")
    relabel(store, "ep-2", Label(outcome="failure"), annotator="dee")
    relabel(store, "ep-3", Label(outcome="success"), annotator="cy")
    relabel(store, "ep-3", Label(outcome="success"), annotator="dee")
    listing = ReviewList.load(store, annotator="cy")
    assert [r.episode_id for r in listing.select(ReviewFilter(disagreement=True))] == ["ep-2"]
    row = listing.rows["ep-2"]
    assert (row.agreement, row.outcome, row.source) == (0.5, "failure", "majority")
    relabel(store, "ep-2", Label(outcome="success"), annotator="lee", role="lead")
    row = listing.update("ep-2", store.labels.heads(["ep-2"])["ep-2"])
    assert (row.outcome, row.source, row.disagrees) == ("success", "lead", False)
    assert listing.select(ReviewFilter(disagreement=True)) == []


def test_sorting_by_every_column(store: Store) -> None:
    relabel(store, "ep-4", Label(outcome="near_success"), annotator="cy")
    listing = ReviewList.load(store, annotator="cy")
    for name in COLUMN_NAMES:
        rows = listing.select(sort=name)
        assert sorted(r.episode_id for r in rows) == [f"ep-{i}" for i in range(6)], name
    by_label = [r.outcome for r in listing.select(sort="label")]
    assert by_label == ["failure", "near_success", "success", "success", "success", "success"]
    by_takeovers = [r.record.num_takeovers for r in listing.select(sort="takeovers", reverse=True)]
    assert by_takeovers == [1, 1, 1, 0, 0, 0]
    assert listing.select(sort="mine")[0].episode_id == "ep-4"
    assert listing.rows["ep-0"].source == "operator"
    with pytest.raises(ValueError, match="no column 'nope'"):
        listing.select(sort="nope")


def test_frames_by_step_across_cameras(any_store: Store, tmp_path: Path) -> None:
    ep = make_episode("cams", 30, cameras=("front", "wrist"), frame_every=4, first_frame_step=2)
    frames_in_a_log(ep, "wrist", tmp_path / "wrist.log")  # one camera in a frame blob
    ep.streams["value"] = TimedStream(ep.timestamps[::2] + 0.01, np.linspace(0, 1, 15)[:, None])
    any_store.add_episode(ep)
    rev = load_review_episode(any_store, "cams")
    assert list(rev.cameras) == ["front", "wrist"]
    assert rev.frame_indices(0) == {"front": None, "wrist": None}
    assert rev.frame_indices(2) == {"front": 0, "wrist": 0}
    assert rev.frame_indices(5) == {"front": 0, "wrist": 0}
    assert rev.frame_indices(6) == {"front": 1, "wrist": 1}
    assert rev.frame_indices(29) == {"front": 6, "wrist": 6}
    assert rev.steps_per_second == 10
    assert rev.step_at_time(1.05) == 10 and rev.time_of(10) == pytest.approx(1.0)
    reader = FrameReader()
    shown = reader.frames_at(rev, 7)
    assert shown["front"].index == 1
    assert np.array_equal(shown["wrist"].rgb, decode_rgb(ep.cameras["wrist"].frames[1]))
    (value,) = rev.stream_series()
    assert value.x[0] == pytest.approx(0.1) and value.components == ("value",)
    assert [(s.start, s.stop, s.source) for s in rev.segments] == [(0, 30, ControlSource.POLICY)]


def test_the_cache_is_bounded_and_prefetch_fills_it(tmp_path: Path) -> None:
    ep = make_episode("cams", 40, cameras=("a", "b"), frame_every=1, image_size=(48, 64))
    with Store.create(tmp_path / "store") as store:
        store.add_episode(ep)
        rev = load_review_episode(store, "cams")
    frame_bytes = 48 * 64 * 3
    reader = FrameReader(FrameCache(max_bytes=10 * frame_bytes))
    plan = prefetch_steps(rev, 5, +1)
    assert plan[:3] == [6, 7, 8] and 4 in plan and 15 in plan and 5 not in plan
    assert prefetch_steps(rev, 39, +1)[:2] == [38, 37]
    assert reader.prefetch(rev, plan[:3], stop=lambda: False) == 6
    before = reader.decoded
    reader.frames_at(rev, 6)
    assert reader.decoded == before  # served from the cache
    assert reader.prefetch(rev, plan, stop=lambda: True) == 0
    reader.prefetch(rev, list(range(40)), stop=lambda: False)
    assert len(reader.cache) == 10 and reader.cache.bytes <= 10 * frame_bytes


def test_the_mailbox_keeps_only_the_newest_request() -> None:
    box: Latest[int] = Latest()
    for i in range(5):
        box.put(i)
    assert box.take(0) == 4 and box.dropped == 4
    assert box.take(0.01) is None
    got: list[int | None] = []
    taker = threading.Thread(target=lambda: got.append(box.take(5)))
    taker.start()
    time.sleep(0.05)
    box.close()
    taker.join(2)
    assert got == [None] and box.pending()


def test_segments() -> None:
    cs = np.array([0, 0, 1, 1, 1, 3, 0, 2], dtype=np.uint8)
    assert [(s.start, s.stop, int(s.source)) for s in segments(cs)] == [
        (0, 2, 0),
        (2, 5, 1),
        (5, 6, 3),
        (6, 7, 0),
        (7, 8, 2),
    ]
    assert segments(np.zeros(0, dtype=np.uint8)) == []


def test_hand_overs_stored_or_computed(tmp_path: Path) -> None:
    ep = make_episode("to", 40, takeover_at=15, action_dim=4, state_dim=5)
    ep.action[15:20, :3] = 0.0  # the operator's reaction pause
    ep.state[12:25, :3] = ep.state[15, :3]
    with Store.create(tmp_path / "store") as store:
        store.add_episode(ep)
        raw = store.read_episode("to")
        computed = load_hand_overs(store, raw)
        assert computed.origin == "computed" and len(computed.items) == 1
        item = computed.items[0]
        assert item.boundary.step == 15 and item.change is not None
        assert item.change.removed_steps > 0 and "pause" in item.summary()
        assert item.raw_t.min() >= -1.0 and item.raw_action.shape[1] == 3
        smooth_and_store(store, "to", SmoothingParams())
        assert load_hand_overs(store, raw).origin == "stored"
        edit_boundary(store, "to", "takeover", 15, step=17, pre_window_start=11, annotator="cy", episode=raw)
        (edited,) = load_hand_overs(store, raw).items
        assert edited.edit is not None and edited.edit.step == 17
        assert edited.moved_to == pytest.approx(0.2) and edited.pre_window == pytest.approx((-0.4, 0.2))
        assert "moved to step 17, pre-intervention window from step 11" in edited.summary()
        bad = SmoothingParams(motion_action_dims=(7,))
        odd = load_hand_overs(store, raw, bad)
        assert odd.origin == "none" and "do not fit" in odd.problem
        quiet = make_episode("quiet", 10)
        store.add_episode(quiet)
        assert load_hand_overs(store, store.read_episode("quiet")).items == ()
