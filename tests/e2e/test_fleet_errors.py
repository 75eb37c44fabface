"""What a person setting up a fleet gets wrong, through the real `takeover` command: each is one
line on stderr naming what to fix, a non-zero exit, and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from takeover.app.cli import main
from takeover.storage.store import Store
from takeover.storage.testing import make_episode
from takeover.storage.testing_postgres import POSTGRES_URL, postgres_test_schema
from takeover.storage.testing_s3 import free_port, moto_s3_server_checking_credentials


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    return err


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    with Store.create(root) as st:
        st.add_episode(make_episode("a", 5))
        st.commit("v1")
    return root


@pytest.mark.parametrize("command", [["data", "fsck"], ["doctor"], ["data", "list"]])
def test_an_unreachable_s3_endpoint(
    store: Path, command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "station")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    dead = f"s3://robot-data/fleet?endpoint=http://127.0.0.1:{free_port()}"
    code = main([*command, "--store", str(store), "--blob-url", dead])
    if command == ["data", "list"]:
        assert code == 0  # listing reads the catalog only: no blob is touched
        return
    assert code == 2
    err = _one_line(capsys)
    assert "cannot reach the object store" in err and "robot-data" in err


def test_wrong_credentials(
    store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "nobody")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with moto_s3_server_checking_credentials() as endpoint:
        url = f"s3://robot-data/fleet?endpoint={endpoint}"
        assert main(["data", "fsck", "--store", str(store), "--blob-url", url]) == 2
        err = _one_line(capsys)
        assert "refused the credentials" in err and "AWS_ACCESS_KEY_ID" in err


def test_a_catalog_url_that_does_not_connect(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dead = f"postgresql+psycopg://takeover@127.0.0.1:{free_port()}/fleet"
    assert main(["data", "log", "v1", "--store", str(store), "--catalog-url", dead]) == 2
    err = _one_line(capsys)
    assert "cannot reach the catalog database" in err and "fleet" in err


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgres//db/fleet", "postgres//db/fleet"),  # no colon: not a URL
        ("mysql+nodriver://u:pw@db/fleet", "u:***@db"),  # no such driver; the password is not shown
    ],
)
def test_a_catalog_url_that_is_not_one(
    store: Path, url: str, shown: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "list", "--store", str(store), "--catalog-url", url]) == 2
    err = _one_line(capsys)
    assert shown in err and "postgresql+psycopg://" in err and "pw" not in err


@pytest.mark.postgres
def test_a_postgresql_url_without_a_driver_uses_the_installed_one(tmp_path: Path) -> None:
    with postgres_test_schema() as schema:
        bare = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
        with Store.create(tmp_path / "s", bare, catalog_schema=schema) as st:
            st.add_episode(make_episode("a", 4))
        with Store.open(tmp_path / "s", POSTGRES_URL, catalog_schema=schema) as st:
            assert [r.episode_id for r in st.list_episodes()] == ["a"]


def test_a_station_records_into_the_catalog_and_bucket_its_environment_names(
    tmp_path: Path, s3_url: str
) -> None:
    # What the README shows for a fleet: the two URLs in the environment, then `takeover run`.
    import os
    import subprocess
    import sys

    from takeover.storage.blobs import open_blob_store

    catalog = f"sqlite:///{tmp_path / 'shared-catalog.db'}"
    (tmp_path / "station").mkdir()
    run = ["run", "--headless", "--no-policy", "--episodes", "1", "--operator", "scripted"]
    done = subprocess.run(
        [sys.executable, "-m", "takeover.app.cli", *run, "--store", str(tmp_path / "station")],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "TAKEOVER_CATALOG_URL": catalog, "TAKEOVER_BLOB_URL": s3_url},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (tmp_path / "station" / "catalog.db").exists()
    with Store.open(tmp_path / "station", catalog, blob_url=s3_url) as st:
        (record,) = st.list_episodes()
        assert open_blob_store(s3_url).has(record.blob_digest)
