"""Stores for the annotation suite: SQLite catalog, and PostgreSQL when the server is reachable
(required when TAKEOVER_REQUIRE_POSTGRES is set), once with the blobs in S3 (a loopback S3 server):
the fleet set-up. Each PostgreSQL test gets its own schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from takeover.storage.store import Store
from takeover.storage.testing_postgres import POSTGRES_URL, postgres_test_schema


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("postgres+s3", marks=pytest.mark.postgres),
    ]
)
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        with Store.create(tmp_path / "store") as s:
            yield s
        return
    blob_url = request.getfixturevalue("s3_url") if request.param == "postgres+s3" else None
    with (
        postgres_test_schema() as schema,
        Store.create(tmp_path / "store", POSTGRES_URL, catalog_schema=schema, blob_url=blob_url) as s,
    ):
        yield s
