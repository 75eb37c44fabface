"""Every test runs without the developer's own configuration file (~/.config/takeover/config.toml):
`takeover run` and `takeover engine` read it when no --config is given, and so would the tests'
child processes."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


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
