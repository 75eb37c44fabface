from __future__ import annotations

from pathlib import Path

import pytest

from takeover.storage.paths import default_cache_root, default_store_root


def test_env_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TAKEOVER_STORE", str(tmp_path / "s"))
    monkeypatch.setenv("TAKEOVER_CACHE", str(tmp_path / "c"))
    assert default_store_root() == tmp_path / "s"
    assert default_cache_root() == tmp_path / "c"


def test_xdg_and_home_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("TAKEOVER_STORE", "TAKEOVER_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_store_root() == tmp_path / "data" / "takeover" / "store"
    assert default_cache_root() == tmp_path / "cache" / "takeover"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/is/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_store_root() == tmp_path / "home" / ".local" / "share" / "takeover" / "store"
    assert default_cache_root() == tmp_path / "home" / ".cache" / "takeover"
