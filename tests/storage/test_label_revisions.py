"""Label revisions in the catalog: the operator's verdict is revision 1 of every episode (written
with the episode, or by the migration for a catalog made before the table), on SQLite and
PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import select

from takeover.storage import migrations
from takeover.storage.catalog_db import open_engine
from takeover.storage.store import Store
from takeover.storage.tables import LabelRevisionRow
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
