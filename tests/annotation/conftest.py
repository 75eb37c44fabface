"""Stores for the annotation suite: SQLite catalog, and PostgreSQL when the server is reachable
(required when TAKEOVER_REQUIRE_POSTGRES is set). Each PostgreSQL test gets its own schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from takeover.storage.store import Store
from takeover.storage.testing_postgres import POSTGRES_URL, postgres_test_schema


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        with Store.create(tmp_path / "store") as s:
            yield s
        return
    with (
        postgres_test_schema() as schema,
        Store.create(tmp_path / "store", POSTGRES_URL, catalog_schema=schema) as s,
    ):
        yield s
