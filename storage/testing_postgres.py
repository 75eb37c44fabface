"""A throw-away PostgreSQL schema for one test (the storage and annotation suites share it).

The server is the one named by ``TAKEOVER_TEST_POSTGRES_URL`` (default: the local ``test``
database). When it cannot be reached the test is skipped, or failed when
``TAKEOVER_REQUIRE_POSTGRES`` is set (CI), so PostgreSQL tests never vanish silently there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

POSTGRES_URL = os.environ.get(
    "TAKEOVER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def postgres_test_schema(url: str = POSTGRES_URL) -> Iterator[str]:
    """Create a uniquely named schema, yield its name, drop it afterwards."""
    import pytest

    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        engine.dispose()
        msg = f"PostgreSQL unreachable at {url}: {exc.orig}"
        if os.environ.get("TAKEOVER_REQUIRE_POSTGRES"):
            pytest.fail(msg)
        pytest.skip(msg)
    schema = f"takeover_test_{uuid.uuid4().hex[:16]}"
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()
