"""Fixtures for the storage suite: stores, and catalogs on SQLite and PostgreSQL.

PostgreSQL tests skip when the server is unreachable, unless TAKEOVER_REQUIRE_POSTGRES is set
(CI), in which case they fail. Each test gets its own schema, dropped at teardown.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from takeover.storage.blobs import BlobStore, open_blob_store
from takeover.storage.catalog import Catalog
from takeover.storage.store import Store
from takeover.storage.testing_postgres import POSTGRES_URL, postgres_test_schema


@pytest.fixture(params=["local", "s3"])
def blob_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A blob store URL of each backend: a local folder, and a bucket on the loopback S3 server."""
    if request.param == "local":
        return str(tmp_path / "blobstore")
    url: str = request.getfixturevalue("s3_url")
    return url


@pytest.fixture
def blob_store(blob_url: str) -> BlobStore:
    return open_blob_store(blob_url)


@pytest.fixture
def pg_schema() -> Iterator[tuple[str, str]]:
    """(url, schema): a fresh, uniquely named schema in the test database."""
    with postgres_test_schema() as schema:
        yield POSTGRES_URL, schema


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Catalog]]:
    """A callable making connected catalogs that share one database (so reconnects can be tested)."""
    if request.param == "sqlite":
        url, schema = f"sqlite:///{tmp_path / 'catalog.db'}", None
    else:
        url, schema = request.getfixturevalue("pg_schema")
    made: list[Catalog] = []

    def make(clock: Callable[[], float] = time.time) -> Catalog:
        cat = Catalog(url, schema=schema, clock=clock).connect()
        made.append(cat)
        return cat

    yield make
    for cat in made:
        cat.close()


@pytest.fixture
def catalog(catalog_factory: Callable[..., Catalog]) -> Catalog:
    return catalog_factory()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.create(tmp_path / "store") as s:
        yield s
