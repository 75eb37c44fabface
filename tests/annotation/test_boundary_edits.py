"""Boundary edits: a takeover or hand-back moved within its segment, a pre-intervention window
marked before a takeover, each a revision in the catalog (SQLite and PostgreSQL), the newest of a
boundary counting; derived training labels follow them; `takeover annotate boundary` and its
one-line errors; gc removes edits with their episode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from takeover.annotation.boundary_edits import KEEP, edit_boundary, effective_boundaries
from takeover.annotation.training_labels import ControlClass, label_input
from takeover.annotation.training_params import TrainingLabelParams
from takeover.annotation.training_store import derive_and_store, load_training_labels
from takeover.app.cli import main
from takeover.storage.errors import InvalidLabelError
from takeover.storage.gc import collect_garbage
from takeover.storage.schema import ControlSource, Event, EventKind
from takeover.storage.store import Store
from takeover.storage.testing import make_episode
from takeover.storage.testing_postgres import POSTGRES_URL, postgres_test_schema

PARAMS = TrainingLabelParams(pre_window=3, pre_window_unit="steps")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    if request.param == "sqlite":
        yield {"root": tmp_path / "store", "catalog_url": None}
        return
    with postgres_test_schema() as schema:
        yield {"root": tmp_path / "store", "catalog_url": POSTGRES_URL, "catalog_schema": schema}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.create(tmp_path / "store") as s:
        yield s


def _two_takeovers(episode_id: str = "ep") -> Any:
    """40 steps: policy 0-11, human 12-19, policy 20-29, human 30-39 (takeovers at 12 and 30, a
    hand-back at 20)."""
    ep = make_episode(episode_id, 40, seed=1)
    cs = np.full(40, int(ControlSource.POLICY), dtype=np.uint8)
    cs[12:20] = int(ControlSource.HUMAN)
    cs[30:] = int(ControlSource.HUMAN)
    ep.control_source = cs
    t0 = float(ep.timestamps[0])
    ep.events = [
        Event(EventKind.START, 0, t0),
        Event(EventKind.TAKEOVER, 12, t0 + 1.2),
        Event(EventKind.HANDBACK, 20, t0 + 2.0),
        Event(EventKind.TAKEOVER, 30, t0 + 3.0),
        Event(EventKind.END, 40, t0 + 4.0),
    ]
    return ep


def test_edits_are_revisions_and_the_newest_of_a_boundary_counts(where: dict[str, Any]) -> None:
    with Store.create(**where) as store:
        ep = _two_takeovers()
        store.add_episode(ep)
        first = edit_boundary(store, "ep", "takeover", 12, step=10, pre_window_start=4, annotator="bo")
        again = edit_boundary(
            store, "ep", "takeover", 12, step=11, annotator="cy", role="lead", notes="later"
        )
        back = edit_boundary(store, "ep", "handback", 20, step=22, annotator="bo")
        assert (first.parent_id, again.parent_id, back.parent_id) == (None, first.id, None)
        assert again.pre_window_start == 4  # kept from the edit it replaces
        assert [e.id for e in store.boundaries.history("ep")] == [first.id, again.id, back.id]
    # Another connection sees the same.
    with Store.open(**where) as store:
        current = store.boundaries.current(["ep"])["ep"]
        assert [(e.kind, e.recorded_step, e.step) for e in current] == [
            ("takeover", 12, 11),
            ("handback", 20, 22),
        ]
        bounds = effective_boundaries(ep, current)
        assert [(b.kind.value, b.recorded_step, b.step, b.pre_window_start, b.moved) for b in bounds] == [
            ("takeover", 12, 11, 4, True),
            ("handback", 20, 22, None, True),
            ("takeover", 30, 30, None, False),
        ]
        edit_boundary(store, "ep", "takeover", 12, pre_window_start=None, annotator="bo")
        assert store.boundaries.current(["ep"])["ep"][0].pre_window_start is None
        assert store.boundaries.current(["other"]) == {}


def test_what_an_edit_cannot_say_is_one_line(store: Store) -> None:
    store.add_episode(_two_takeovers())
    cases = [
        ({"kind": "takeover", "recorded_step": 13, "step": 10}, "no takeover recorded at step 13"),
        ({"kind": "takeover", "recorded_step": 12, "step": 25}, "steps 1 to 19"),
        ({"kind": "takeover", "recorded_step": 30, "step": 19}, "steps 21 to 39"),
        ({"kind": "handback", "recorded_step": 20, "pre_window_start": 15}, "before a takeover"),
        ({"kind": "takeover", "recorded_step": 30, "pre_window_start": 19}, "starts between step 20"),
        ({"kind": "takeover", "recorded_step": 30, "pre_window_start": 31}, "not at 31"),
    ]
    for kwargs, said in cases:
        with pytest.raises(InvalidLabelError, match=said):
            edit_boundary(store, "ep", annotator="bo", **kwargs)
    with pytest.raises(InvalidLabelError, match="edited as annotator or lead"):
        edit_boundary(store, "ep", "takeover", 12, step=11, annotator="bo", role="operator")
    assert store.boundaries.history("ep") == []


def test_training_labels_follow_the_edits_that_count(store: Store) -> None:
    ep = _two_takeovers()
    store.add_episode(ep)
    plain = label_input(ep, "failure", PARAMS)
    assert plain.takeover_steps == (12, 30) and plain.window_starts == ()
    edit_boundary(store, "ep", "takeover", 12, step=10, pre_window_start=5, annotator="bo")
    edits = store.boundaries.current(["ep"])["ep"]
    moved = label_input(ep, "failure", PARAMS, edits)
    assert moved.takeover_steps == (12, 30) and moved.window_starts == (5, None)
    labels = {"ep": "failure"}
    result, created = derive_and_store(store, ["ep"], PARAMS, labels)
    classes = result.episodes[0].control_class
    pre = np.flatnonzero(classes == ControlClass.PRE_INTERVENTION).tolist()
    # The marked window 5..11 (policy steps up to the recorded takeover) and the default 3 steps
    # before the takeover at 30 (27, 28, 29).
    assert pre == [5, 6, 7, 8, 9, 10, 11, 27, 28, 29]
    assert (classes[12:20] == ControlClass.HUMAN).all()  # who drove is never changed
    assert created == 1
    # A new edit is a new input: the stored labels of the old edits are not taken for it.
    edit_boundary(store, "ep", "takeover", 30, pre_window_start=24, annotator="bo")
    assert load_training_labels(store, ["ep"], PARAMS, labels) is None
    result, created = derive_and_store(store, ["ep"], PARAMS, labels)
    pre = np.flatnonzero(result.episodes[0].control_class == ControlClass.PRE_INTERVENTION).tolist()
    assert pre == [5, 6, 7, 8, 9, 10, 11, 24, 25, 26, 27, 28, 29] and created == 1


def test_the_command_shows_moves_and_marks_boundaries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "store"
    with Store.create(root) as store:
        store.add_episode(_two_takeovers())
    base = ["annotate", "boundary", "ep", "--store", str(root)]
    assert main(base) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == [
        "  takeover recorded at 12; default window  (as recorded)",
        "  handback recorded at 20  (as recorded)",
        "  takeover recorded at 30; default window  (as recorded)",
    ]
    argv = [*base, "--takeover", "12", "--move-to", "10", "--pre-window-from", "6", "--annotator", "bo"]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("edit 1 by bo as annotator: takeover recorded at 12, counts from 10;")
    assert "  takeover recorded at 12, counts from 10; pre-intervention window 6..9  (edit 1 by bo)" in out
    for argv, said in [
        ([*base, "--move-to", "3"], "say which boundary to edit"),
        ([*base, "--takeover", "12", "--move-to", "25"], "moves within its segment, steps 1 to 19"),
        ([*base, "--handback", "20", "--pre-window-from", "15"], "before a takeover, not a hand-back"),
        ([*base, "--takeover", "13", "--move-to", "11"], "no takeover recorded at step 13"),
        (["annotate", "boundary", "nope", "--store", str(root)], "no episode 'nope'"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert said in err and len(err.splitlines()) == 1, err
    with Store.open(root) as store:
        assert len(store.boundaries.history("ep")) == 1
    assert main(["data", "show", "ep", "--store", str(root)]) == 0
    shown = capsys.readouterr().out.splitlines()
    at = next(k for k, line in enumerate(shown) if line.startswith("boundary edits (oldest first;"))
    assert shown[at + 2].split()[:7] == ["1", "-", "takeover", "at", "12", "10", "6..9"]


def test_gc_removes_an_episodes_edits_with_it(store: Store) -> None:
    store.add_episode(_two_takeovers("ep-gone"))
    store.add_episode(_two_takeovers("ep-keep"))
    for eid in ("ep-gone", "ep-keep"):
        first = edit_boundary(store, eid, "takeover", 12, step=11, annotator="bo")
        edit_boundary(store, eid, "takeover", 12, step=10, annotator="cy")
    store.delete_episodes(["ep-gone"])
    report = collect_garbage(store, retention_s=0, grace_s=0)
    assert report.episodes == ["ep-gone"]
    assert set(store.boundaries.current()) == {"ep-keep"}
    newer = edit_boundary(store, "ep-keep", "takeover", 12, step=9, annotator="bo", pre_window_start=KEEP)
    assert newer.id > first.id + 1
