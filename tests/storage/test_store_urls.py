"""A store whose blobs live in S3 (a real S3 server on loopback) and whose catalog is PostgreSQL,
named by URL: record, read, commit, check and pull through it, from code and from the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from takeover.app.cli import main
from takeover.storage.blobs import open_blob_store
from takeover.storage.errors import StorageError
from takeover.storage.pull import decode_rgb_chw, pull
from takeover.storage.s3blobs import S3BlobStore
from takeover.storage.store import Store
from takeover.storage.testing import frames_in_a_log, make_episode


def test_a_store_with_its_blobs_in_s3(tmp_path: Path, s3_url: str) -> None:
    root = tmp_path / "store"
    with Store.create(root, blob_url=s3_url) as store:
        assert isinstance(store.blobs, S3BlobStore)
        ep = make_episode("ep-s3", 9, seed=1, cameras=("front",))
        frames = frames_in_a_log(ep, "front", tmp_path / "front.log")
        digest = store.add_episode(ep)
        store.add_episode(make_episode("ep-inline", 6, seed=2))
        back = store.read_episode("ep-s3")
        assert list(back.cameras["front"].frames) == frames
        store.commit("v1")
        assert store.check().healthy
    assert not (root / "blobs").exists()  # nothing of the blobs is local
    s3 = open_blob_store(s3_url)
    assert digest in set(s3.digests()) and len(list(s3.digests())) == 3  # 2 episode files + 1 frame blob
    # The marker records the blob URL: opening by folder alone finds the blobs.
    with Store.open(root) as again:
        assert again.blobs.url == s3.url
        ds = pull("v1", again, cache_dir=tmp_path / "cache")
    ep_index = [m.episode_id for m in ds.episodes].index("ep-s3")
    item = ds[int(ds._offsets[ep_index]) + 3]  # frames every 3 steps: step 3 shows frame 1
    np.testing.assert_array_equal(item["images.front"].numpy(), decode_rgb_chw(frames[1]))


@pytest.mark.postgres
def test_cli_commands_take_the_catalog_and_blob_urls(
    tmp_path: Path,
    s3_url: str,
    pg_schema: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, schema = pg_schema
    catalog_url = f"{url}?options=-csearch_path%3D{schema}"
    root = tmp_path / "store"
    urls = ["--catalog-url", catalog_url, "--blob-url", s3_url]
    assert main(["data", "init", "--store", str(root), *urls]) == 0
    with Store.open(root, catalog_url, blob_url=s3_url) as store:
        store.add_episode(make_episode("a", 5))
    monkeypatch.setenv("TAKEOVER_CATALOG_URL", catalog_url)  # from the environment this time
    assert main(["data", "commit", "--store", str(root), "--tag", "v1"]) == 0
    assert main(["data", "list", "--store", str(root)]) == 0
    assert "a" in capsys.readouterr().out
    assert main(["doctor", "--store", str(root)]) == 0
    assert "is healthy" in capsys.readouterr().out
    monkeypatch.delenv("TAKEOVER_CATALOG_URL")
    # Without the catalog URL, the store says it needs one: one line, exit 2.
    assert main(["data", "list", "--store", str(root)]) == 2
    assert "external database" in capsys.readouterr().err


def test_an_unreachable_blob_store_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from takeover.storage.testing_s3 import free_port

    root = tmp_path / "store"
    dead = f"s3://bucket/x?endpoint=http://127.0.0.1:{free_port()}"
    with Store.create(root, blob_url=dead) as store, pytest.raises(StorageError, match="cannot reach"):
        store.add_episode(make_episode("a", 4))
    assert main(["data", "commit", "--store", str(root), "--tag", "v1"]) == 2  # nothing cataloged
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1


def test_a_catalog_url_that_does_not_connect_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from takeover.storage.testing_s3 import free_port

    root = tmp_path / "store"
    Store.create(root).close()
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/fleet"
    assert main(["data", "list", "--store", str(root), "--catalog-url", dead]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot reach the catalog database" in err and "fleet" in err
