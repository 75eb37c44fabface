"""Label revisions in the catalog, on SQLite and PostgreSQL: the operator's verdict is revision 1 of
every episode (written with the episode, or by the migration for a catalog made before the table);
revisions are appended with their parent checked, read back in order, and each annotator's newest
is found for thousands of episodes in one query; `gc` removes them with their episode, and their
ids are never reused."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import event, select

from takeover.storage import migrations
from takeover.storage.catalog import Catalog
from takeover.storage.catalog_db import open_engine
from takeover.storage.errors import InvalidLabelError, UnknownEpisodeError
from takeover.storage.gc import collect_garbage
from takeover.storage.label_revisions import Draft, Label
from takeover.storage.store import Store
from takeover.storage.tables import EpisodeRow, LabelRevisionRow
from takeover.storage.testing import make_episode

FIXTURE = Path(__file__).parent / "fixtures" / "store-before-migrations"

VERDICTS = [
    # (episode id, the station's flag, the operator's outcome, the operator's note)
    ("ep-said", True, "near_success", "almost"),
    ("ep-flag-yes", True, "", ""),
    ("ep-flag-no", False, "", "slipped"),
    ("ep-neither", None, "", ""),
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """How to open a store of each catalog backend: Store.create/open keyword arguments."""
    if request.param == "sqlite":
        return {"root": tmp_path / "store", "catalog_url": None}
    url, schema = request.getfixturevalue("pg_schema")
    return {"root": tmp_path / "store", "catalog_url": url, "catalog_schema": schema}


def _stored(store: Store) -> list[tuple[Any, ...]]:
    """Every stored revision as (id, episode, parent, annotator, role, time, outcome, quality,
    category, progress, notes, tags), in id order."""
    t = LabelRevisionRow.__table__
    with store.catalog.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(t).order_by(t.c.id))]


def _with_verdicts(store: Store) -> None:
    for i, (episode_id, success, outcome, note) in enumerate(VERDICTS):
        store.add_episode(make_episode(episode_id, 4, seed=i, success=success, outcome=outcome, note=note))


def test_adding_an_episode_writes_the_operators_verdict_as_revision_1(where: dict[str, Any]) -> None:
    with Store.create(**where) as store:
        _with_verdicts(store)
        rows = _stored(store)
        ended = {e.episode_id: e.ended_at for e in store.list_episodes()}
    verdicts = [
        ("ep-said", "near_success", "almost"),
        ("ep-flag-yes", "success", ""),
        ("ep-flag-no", "failure", "slipped"),
    ]
    assert [r[1:] for r in rows] == [
        (eid, None, "ada", "operator", ended[eid], outcome, None, None, None, note, "[]")
        for eid, outcome, note in verdicts
    ]
    assert [r[0] for r in rows] == sorted({r[0] for r in rows})


def _downgrade(where: dict[str, Any], revision: str) -> None:
    """Take the store's catalog back to ``revision`` (as a store made before it would be)."""
    url = where["catalog_url"] or f"sqlite:///{where['root'] / 'catalog.db'}"
    engine = open_engine(url, read_only=False, schema=where.get("catalog_schema"))
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)
            assert migrations.current(conn) == revision
    finally:
        engine.dispose()


def test_a_catalog_made_before_label_revisions_gets_revision_1_from_its_verdicts(
    where: dict[str, Any],
) -> None:
    with Store.create(**where) as store:
        _with_verdicts(store)
        written = [r[1:] for r in _stored(store)]
    _downgrade(where, "0004_episode_videos")
    with Store.open(**where) as store:
        rows = _stored(store)
        # The same rows, in recording order, as adding the episodes writes today.
        assert [r[1:] for r in rows] == written
        store.add_episode(make_episode("ep-later", 4, seed=9))
        assert _stored(store)[-1][1] == "ep-later" and _stored(store)[-1][0] > rows[-1][0]
        assert store.check().healthy


def test_the_store_made_before_migrations_gets_revision_1_of_each_episode(tmp_path: Path) -> None:
    root = tmp_path / "store"
    shutil.copytree(FIXTURE, root)
    for p in [root, *root.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    with Store.open(root) as store:
        rows = _stored(store)
    assert [(r[1], r[2], r[3], r[4], r[6]) for r in rows] == [
        ("ep-inline", None, "ada", "operator", "success"),
        ("ep-blob", None, "ada", "operator", "success"),
    ]


def _catalog_with(catalog: Catalog, *episode_ids: str) -> None:
    """Catalog episodes (verdict: success, operator ada) without storing their files."""
    meta = make_episode("template", 2, cameras=()).meta
    for i, episode_id in enumerate(episode_ids):
        catalog.add_episode(
            replace(meta, episode_id=episode_id, started_at=meta.started_at + i), "d" * 64, 2, []
        )


def _episode_columns() -> dict[str, Any]:
    meta = make_episode("template", 2, cameras=()).meta
    summary = {k: v for k, v in meta.summary_fields().items() if k not in ("seed", "end_reason", "note")}
    return {
        **summary,
        "num_steps": 2,
        "blob_digest": "d" * 64,
        "num_takeovers": 0,
        "num_handbacks": 0,
        "recorded_at": 0.0,
    }


def test_revisions_are_appended_with_their_parent_and_read_back_in_order(catalog: Catalog) -> None:
    _catalog_with(catalog, "ep-a", "ep-b")
    labels = catalog.labels
    (first,) = labels.history("ep-a")
    assert (first.outcome, first.role, first.annotator, first.parent_id) == (
        "success",
        "operator",
        "ada",
        None,
    )
    near = Label(outcome="near_success", progress=80, notes="dropped it at the goal", tags=("grasp", "late"))
    second = labels.add("ep-a", near, annotator="bo", role="annotator", parent_id=first.id)
    third = labels.add(
        "ep-a",
        Label(outcome="failure", failure_category="dropped"),
        annotator="cy",
        role="lead",
        parent_id=second.id,
    )
    assert labels.history("ep-a") == [first, second, third]
    assert second.label_fields() == near.label_fields() and second.parent_id == first.id
    assert first.id < second.id < third.id and third.created_at >= second.created_at
    assert [r.id for r in labels.history("ep-b")] != [] and labels.history("ep-b")[0].id not in (
        second.id,
        third.id,
    )


def test_a_parent_must_be_a_revision_of_the_same_episode(catalog: Catalog) -> None:
    _catalog_with(catalog, "ep-a", "ep-b")
    (b1,) = catalog.labels.history("ep-b")
    before = catalog.labels.heads()
    good = Draft(
        episode_id="ep-a", label=Label(outcome="failure"), annotator="bo", role="annotator", parent_id=None
    )
    with pytest.raises(
        InvalidLabelError,
        match=f"revision {b1.id} cannot be the parent .* episode ep-a: it is one of episode ep-b",
    ):
        catalog.labels.append([good, replace(good, parent_id=b1.id)])
    with pytest.raises(InvalidLabelError, match=r"revision 999 .*: it is no revision"):
        catalog.labels.append([replace(good, parent_id=999)])
    with pytest.raises(UnknownEpisodeError, match="ghost"):
        catalog.labels.append([good, replace(good, episode_id="ghost")])
    with pytest.raises(UnknownEpisodeError, match="ghost"):
        catalog.labels.history("ghost")
    assert catalog.labels.heads() == before  # a refused batch writes nothing, not even its good part


@pytest.mark.parametrize(
    ("label", "role", "annotator", "message"),
    [
        (
            Label(outcome="won"),
            "annotator",
            "bo",
            "an outcome is one of success, near_success, failure, got 'won'",
        ),
        (Label(outcome="failure", quality="clean"), "annotator", "bo", "a quality is for successes only"),
        (Label(outcome="success", quality="shiny"), "annotator", "bo", "a quality is one of clean"),
        (Label(outcome="near_success", failure_category="dropped"), "annotator", "bo", "for failures only"),
        (
            Label(outcome="failure", failure_category="two words"),
            "annotator",
            "bo",
            "a failure category is a word",
        ),
        (Label(outcome="success", progress=101), "annotator", "bo", "0 to 100, got 101"),
        (Label(outcome="success", progress=True), "annotator", "bo", "0 to 100, got True"),
        (Label(outcome="success", tags=("ok", "a,b")), "annotator", "bo", "a tag is a word"),
        (Label(outcome="success"), "boss", "bo", "a role is one of operator, annotator, lead"),
        (Label(outcome="success"), "lead", "  ", "an annotator is named"),
    ],
)
def test_values_outside_a_labels_vocabulary_are_refused_in_one_line(
    catalog: Catalog, label: Label, role: str, annotator: str, message: str
) -> None:
    _catalog_with(catalog, "ep-a")
    with pytest.raises(InvalidLabelError, match=message) as exc:
        catalog.labels.add("ep-a", label, annotator=annotator, role=role, parent_id=None)
    assert "\n" not in str(exc.value)
    assert len(catalog.labels.history("ep-a")) == 1


def test_each_annotators_newest_revision_of_thousands_of_episodes_in_one_query(
    catalog_factory: Callable[..., Catalog],
) -> None:
    catalog = catalog_factory()
    ids = [f"ep-{i:04d}" for i in range(2500)]
    row = _episode_columns()
    with catalog.engine.begin() as conn:  # thousands of episodes at once, as a fleet's catalog holds
        conn.execute(EpisodeRow.__table__.insert(), [{**row, "episode_id": i} for i in ids])
    catalog.labels.append(
        [
            Draft(
                episode_id=i, label=Label(outcome="success"), annotator="ada", role="operator", parent_id=None
            )
            for i in ids
        ]
    )
    labels = catalog.labels
    ones = labels.heads(ids)
    drafts = [
        Draft(episode_id=i, label=Label(outcome=o), annotator=a, role="annotator", parent_id=ones[i][0].id)
        for i in ids[::2]
        for a, o in (("bo", "failure"), ("cy", "success"), ("bo", "near_success"))
    ]
    labels.append(drafts)
    statements: list[str] = []
    event.listen(catalog.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    heads = labels.heads(ids)
    assert len([s for s in statements if "label_revisions" in s]) == 1
    assert len(heads) == 2500
    assert [(r.annotator, r.outcome) for r in heads["ep-0000"]] == [
        ("ada", "success"),
        ("cy", "success"),
        ("bo", "near_success"),
    ]
    assert [(r.annotator, r.outcome) for r in heads["ep-0001"]] == [("ada", "success")]
    assert labels.heads(["ep-0002", "ghost"]).keys() == {"ep-0002"} and labels.heads([]) == {}
    assert labels.heads() == heads  # every episode


def test_gc_removes_an_episodes_revisions_with_it_and_ids_are_never_reused(where: dict[str, Any]) -> None:
    with Store.create(**where) as store:
        store.add_episode(make_episode("ep-keep", 4, seed=1))
        store.add_episode(make_episode("ep-gone", 4, seed=2))
        (g1,) = store.labels.history("ep-gone")
        g2 = store.labels.add(
            "ep-gone", Label(outcome="failure"), annotator="bo", role="annotator", parent_id=g1.id
        )
        store.labels.add("ep-gone", Label(outcome="success"), annotator="cy", role="lead", parent_id=g2.id)
        newest = max(r[0] for r in _stored(store))
        store.delete_episodes(["ep-gone"])
        report = collect_garbage(store, retention_s=0, grace_s=0)
        assert report.episodes == ["ep-gone"]
        assert {r[1] for r in _stored(store)} == {"ep-keep"}
        (k1,) = store.labels.history("ep-keep")
        k2 = store.labels.add(
            "ep-keep", Label(outcome="failure"), annotator="bo", role="annotator", parent_id=k1.id
        )
        assert k2.id > newest
