"""Catalog migrations: a store made before migrations upgrades in place, the migrated schema is the
catalog's tables exactly, a catalog newer than the code is refused in one line, and processes
opening a new catalog at once migrate it once."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData, create_engine, select, text

from takeover.app.cli import main
from takeover.storage import migrations
from takeover.storage.catalog import Catalog
from takeover.storage.episode_file import read_header
from takeover.storage.errors import SchemaTooNewError
from takeover.storage.store import Store
from takeover.storage.tables import Base, DerivationRow

FIXTURE = Path(__file__).parent / "fixtures" / "store-before-migrations"
"""A store made by the code as it stood before migrations: two episodes (one with its frames in a
separate blob), version v1, a claimed seed and a stored smoothing derivation."""


def _copy_fixture(dest: Path) -> Path:
    shutil.copytree(FIXTURE, dest)
    for p in [dest, *dest.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dest


def _revision(db: Path) -> str | None:
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return migrations.current(conn)
    finally:
        engine.dispose()


def test_a_store_made_before_migrations_upgrades_in_place(tmp_path: Path) -> None:
    root = _copy_fixture(tmp_path / "store")
    assert _revision(root / "catalog.db") is None
    with Store.open(root) as store:
        assert _revision(root / "catalog.db") == migrations.head()
        assert [r.episode_id for r in store.list_episodes()] == ["ep-inline", "ep-blob"]
        # The frame blobs were listed from the episode files, once, by the upgrade.
        with store.open_blob(store.get_episode("ep-blob").blob_digest) as f:
            named = list(read_header(f).frame_blobs)
        assert len(named) == 1 and store.catalog.frame_blobs() == {"ep-blob": named}
        # Versions, tags, seeds and derivations made before are all still there and readable.
        v1 = store.resolve("v1")
        assert [e.episode_id for e in v1.manifest.episodes] == ["ep-blob", "ep-inline"]
        assert store.claim_seed(7) is False
        with store.catalog.engine.connect() as conn:
            (row,) = conn.execute(select(DerivationRow.__table__)).all()
        assert row.episode_id == "ep-inline" and store.derived_blobs.verify(row.digest)
        ep = store.read_episode("ep-blob")
        assert len(list(ep.cameras["front"].frames)) == len(ep.cameras["front"].timestamps)
        store.commit("v2")
        assert store.resolve("v2").manifest.episodes == v1.manifest.episodes
        assert store.check().healthy
    with Store.open(root) as store:  # opening again changes nothing
        assert _revision(root / "catalog.db") == migrations.head() and len(store.tags()) == 2


def test_head_names_the_newest_migration() -> None:
    assert migrations.script_head() == migrations.HEAD
    assert migrations.known_revisions() == {
        "0001_baseline",
        "0002_episode_blobs",
        "0003_versions",
        "0004_episode_videos",
        "0005_label_revisions",
        "0006_boundary_edits",
    }


def _schema_differences(url: str, schema: str | None) -> list[object]:
    with Catalog(url, schema=schema) as cat, cat.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": migrations.VERSION_TABLE})
        return list(compare_metadata(context, Base.metadata))


def test_the_migrated_schema_is_the_catalogs_tables(tmp_path: Path) -> None:
    assert _schema_differences(f"sqlite:///{tmp_path / 'c.db'}", None) == []


@pytest.mark.postgres
def test_the_migrated_schema_is_the_catalogs_tables_on_postgres(pg_schema: tuple[str, str]) -> None:
    url, schema = pg_schema
    assert _schema_differences(url, schema) == []


@pytest.mark.postgres
def test_a_postgres_catalog_made_before_migrations_upgrades(
    tmp_path: Path, pg_schema: tuple[str, str]
) -> None:
    """The old catalog's tables and rows, copied from the fixture's SQLite catalog into PostgreSQL."""
    url, schema = pg_schema
    old = create_engine(f"sqlite:///file:{FIXTURE / 'catalog.db'}?mode=ro&immutable=1&uri=true")
    pg = create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        with pg.begin() as conn:
            md = migrations_baseline_tables(conn)
            with old.connect() as src:
                for table in ("episodes", "events", "episode_ends", "versions", "tags", "seeds"):
                    rows = [dict(r._mapping) for r in src.execute(select(md.tables[table]))]
                    if rows:
                        conn.execute(md.tables[table].insert(), rows)
    finally:
        old.dispose()
        pg.dispose()
    root = _copy_fixture(tmp_path / "store")
    (root / "catalog.db").unlink()
    info = (root / "store.json").read_text().replace('"sqlite"', '"external"')
    (root / "store.json").write_text(info)
    with Store.open(root, url, catalog_schema=schema) as store:
        assert set(store.catalog.frame_blobs()) == {"ep-blob"}
        assert [t.name for t in store.tags()] == ["v1"]
        store.commit("v2")
        assert store.check().healthy


def migrations_baseline_tables(conn: Connection) -> MetaData:
    """The tables exactly as the code before migrations made them (the baseline revision's DDL)."""
    path = Path(migrations.__file__).parent / "versions" / "0001_baseline.py"
    spec = importlib.util.spec_from_file_location("baseline_0001", path)
    assert spec is not None and spec.loader is not None
    baseline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(baseline)
    md = MetaData()
    md.create_all(conn, tables=baseline._tables(md))
    return md


def test_a_schema_newer_than_the_code_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "store"
    Store.create(root).close()
    engine = create_engine(f"sqlite:///{root / 'catalog.db'}")
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {migrations.VERSION_TABLE} SET version_num = '0099_from_the_future'"))
    engine.dispose()
    with pytest.raises(SchemaTooNewError, match="newer version of takeover"):
        Store.open(root)
    assert main(["data", "list", "--store", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "0099_from_the_future" in err and "upgrade takeover" in err
    root.chmod(0o555)  # read-only stores say the same
    try:
        with pytest.raises(SchemaTooNewError):
            Store.open(root)
    finally:
        root.chmod(0o755)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_processes_opening_a_new_catalog_at_once_migrate_it_once(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url, schema = f"sqlite:///{tmp_path / 'c.db'}", None
    else:
        url, schema = request.getfixturevalue("pg_schema")
    code = (
        f"from takeover.storage.catalog import Catalog; Catalog({url!r}, schema={schema!r}).connect().close()"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(4)]
    errors = [p.communicate(timeout=60)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    with Catalog(url, schema=schema) as cat, cat.engine.connect() as conn:
        rows = conn.execute(text(f"SELECT version_num FROM {migrations.VERSION_TABLE}")).all()
    assert [r[0] for r in rows] == [migrations.head()]
