"""Every test runs without the developer's own configuration file (~/.config/takeover/config.toml):
`takeover run` and `takeover engine` read it when no --config is given, and so would the tests'
child processes. A real S3 endpoint on loopback serves the suites that store blobs in S3."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from takeover.storage.testing_s3 import TEST_CREDENTIALS, make_bucket, moto_s3_server


@pytest.fixture(autouse=True, scope="session")
def _no_user_configuration() -> Iterator[None]:
    before = os.environ.get("TAKEOVER_CONFIG")
    with tempfile.TemporaryDirectory(prefix="takeover-config-") as folder:
        os.environ["TAKEOVER_CONFIG"] = str(Path(folder) / "absent.toml")
        yield
    if before is None:
        os.environ.pop("TAKEOVER_CONFIG", None)
    else:
        os.environ["TAKEOVER_CONFIG"] = before


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 endpoint (moto's server) on loopback, with test credentials in the environment."""
    saved = {k: os.environ.get(k) for k in TEST_CREDENTIALS}
    os.environ.update(TEST_CREDENTIALS)
    try:
        with moto_s3_server() as endpoint:
            yield endpoint
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def s3_url(s3_endpoint: str) -> str:
    """The URL of a blob store in a fresh bucket on the loopback S3 endpoint."""
    return f"s3://{make_bucket(s3_endpoint)}/store?endpoint={s3_endpoint}"
