"""The blob store contract, run against every backend: the local folder and S3 (a real S3 server on
loopback, reached through s3fs over HTTP)."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import BinaryIO, cast

import boto3
import pytest

from takeover.storage.blobs import BlobStore, LocalBlobStore, open_blob_store
from takeover.storage.errors import BlobNotFoundError, BlobStoreUnavailableError, CorruptBlobError
from takeover.storage.s3blobs import S3BlobStore
from takeover.storage.testing_s3 import free_port, moto_s3_server_checking_credentials


class _FailingReader:
    """Gives the first ``fail_after`` bytes of ``data``, then fails as a disk or network read would."""

    def __init__(self, data: bytes, fail_after: int) -> None:
        self._data, self._pos, self._fail_after = data, 0, fail_after

    def read(self, n: int = -1) -> bytes:
        if self._pos >= self._fail_after:
            raise OSError("read error part-way through the upload")
        n = len(self._data) - self._pos if n < 0 else n
        out = self._data[self._pos : min(self._pos + n, self._fail_after)]
        self._pos += len(out)
        return out


def _nothing_stored(blobs: BlobStore) -> None:
    assert list(blobs.digests()) == []
    if isinstance(blobs, S3BlobStore):
        bucket = blobs.bucket
        client = boto3.client("s3", endpoint_url=blobs.endpoint)
        assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
        assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    else:
        assert isinstance(blobs, LocalBlobStore)
        leftovers = [p for p in blobs.root.rglob("*") if p.is_file()] if blobs.root.exists() else []
        assert leftovers == []


def test_put_and_read_back(blob_store: BlobStore) -> None:
    data = os.urandom(100_000)
    digest = blob_store.put_bytes(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert blob_store.has(digest) and blob_store.verify(digest)
    assert blob_store.size(digest) == len(data)
    assert blob_store.get_bytes(digest) == data
    with blob_store.open(digest) as f:
        f.seek(5000)
        assert f.read(10) == data[5000:5010]
    assert list(blob_store.digests()) == [digest]
    assert blob_store.put_bytes(data) == digest  # idempotent
    assert list(blob_store.digests()) == [digest]


def test_byte_ranges(blob_store: BlobStore) -> None:
    data = os.urandom(50_000)
    digest = blob_store.put_bytes(data)
    for start, length in [(0, 1), (0, 50_000), (12_345, 678), (49_990, 10), (49_990, 100), (50_000, 5)]:
        assert blob_store.read_range(digest, start, length) == data[start : start + length]


def test_large_blob_from_a_file(blob_store: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    data = os.urandom(19 << 20)  # more than two multipart parts on S3
    src.write_bytes(data)
    digest = blob_store.put_file(src)
    assert digest == hashlib.sha256(data).hexdigest() and blob_store.verify(digest)
    assert blob_store.read_range(digest, (9 << 20) - 3, 7) == data[(9 << 20) - 3 : (9 << 20) + 4]
    out = tmp_path / "copy.bin"
    blob_store.fetch_to(digest, out)
    assert out.read_bytes() == data
    assert blob_store.adopt_file(src, digest) == digest
    assert list(blob_store.digests()) == [digest]


@pytest.mark.parametrize("size", [1 << 20, 20 << 20], ids=["one-put", "multipart"])
def test_a_failure_mid_upload_leaves_nothing(blob_store: BlobStore, size: int) -> None:
    data = os.urandom(size)
    digest = hashlib.sha256(data).hexdigest()
    src = cast(BinaryIO, _FailingReader(data, fail_after=size * 3 // 4))
    with pytest.raises(OSError, match="part-way"):
        blob_store.put_stream(src, digest)
    assert not blob_store.has(digest)
    _nothing_stored(blob_store)
    assert blob_store.put_stream(io.BytesIO(data), digest) == digest
    assert blob_store.get_bytes(digest) == data


def test_bytes_that_do_not_match_their_digest_are_not_stored(blob_store: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(CorruptBlobError):
        blob_store.put_stream(io.BytesIO(data), wrong)
    src = tmp_path / "f.bin"
    src.write_bytes(data)
    with pytest.raises(CorruptBlobError):
        blob_store.put_file(src, expected_digest=wrong)
    _nothing_stored(blob_store)


def test_missing_blobs(blob_store: BlobStore, tmp_path: Path) -> None:
    digest = hashlib.sha256(b"never stored").hexdigest()
    assert not blob_store.has(digest) and not blob_store.verify(digest)
    for read in (
        lambda: blob_store.get_bytes(digest),
        lambda: blob_store.read_range(digest, 0, 4),
        lambda: blob_store.size(digest),
        lambda: blob_store.open(digest).read(),
        lambda: blob_store.fetch_to(digest, tmp_path / "x"),
    ):
        with pytest.raises(BlobNotFoundError, match=digest):
            read()
    with pytest.raises(ValueError, match="not a sha256"):
        blob_store.has("../../etc/passwd")
    blob_store.remove(digest)  # removing what is absent is no error


def test_remove_and_verify_a_damaged_blob(blob_store: BlobStore) -> None:
    keep = blob_store.put_bytes(b"keep me")
    gone = blob_store.put_bytes(b"remove me")
    blob_store.remove(gone)
    assert not blob_store.has(gone) and blob_store.has(keep)
    assert list(blob_store.digests()) == [keep]


def test_modified_is_when_a_blob_was_last_put(blob_store: BlobStore) -> None:
    before = time.time()
    digest = blob_store.put_bytes(b"how old am I")
    first = blob_store.modified(digest)
    assert before - 2 <= first <= time.time() + 2  # seconds since the epoch (S3: whole seconds)
    time.sleep(1.1)
    # Putting it again (another station writing the same bytes) makes it new: not an old orphan.
    assert blob_store.put_bytes(b"how old am I") == digest
    assert blob_store.modified(digest) >= first + 1
    with pytest.raises(BlobNotFoundError):
        blob_store.modified(hashlib.sha256(b"never stored").hexdigest())


def test_concurrent_puts_of_the_same_content(blob_store: BlobStore) -> None:
    data = os.urandom(1 << 20)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(blob_store.put_bytes(data))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6 and len(set(results)) == 1
    assert blob_store.verify(results[0]) and list(blob_store.digests()) == [results[0]]


def test_the_url_reopens_the_same_store(blob_store: BlobStore) -> None:
    digest = blob_store.put_bytes(b"found again by url")
    again = open_blob_store(blob_store.url)
    assert type(again) is type(blob_store) and again.get_bytes(digest) == b"found again by url"


def test_unreachable_endpoint_is_one_clear_line() -> None:
    blobs = open_blob_store(f"s3://bucket/p?endpoint=http://127.0.0.1:{free_port()}")
    with pytest.raises(BlobStoreUnavailableError) as err:
        blobs.has(hashlib.sha256(b"x").hexdigest())
    message = str(err.value)
    assert "\n" not in message and "cannot reach the object store" in message and "127.0.0.1" in message


def test_unsupported_url() -> None:
    with pytest.raises(ValueError, match="unsupported blob store URL"):
        open_blob_store("gs://bucket/x")
    with pytest.raises(ValueError, match="unknown option"):
        open_blob_store("s3://bucket/x?colour=blue")


_SLOW_UPLOAD = """
import hashlib, os, sys, time
from takeover.storage.blobs import open_blob_store

class Slow:
    def __init__(self, data):
        self.data, self.pos = data, 0
    def read(self, n=-1):
        time.sleep(0.05)
        out = self.data[self.pos : self.pos + (1 << 20)]
        self.pos += len(out)
        return out

data = os.urandom(60 << 20)
open_blob_store(sys.argv[1]).put_stream(Slow(data), hashlib.sha256(data).hexdigest())
"""


def test_a_writer_killed_mid_upload_leaves_no_object(blob_url: str, tmp_path: Path) -> None:
    """SIGKILL part-way through a 60 MB upload (after the first parts are sent): no blob appears."""
    blobs = open_blob_store(blob_url)
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_UPLOAD, blob_url])
    try:
        deadline = time.monotonic() + 30
        while not _upload_under_way(blobs) and time.monotonic() < deadline:
            assert proc.poll() is None, "the upload ended before it could be killed"
            time.sleep(0.05)
        assert _upload_under_way(blobs)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert list(blobs.digests()) == []
    if isinstance(blobs, S3BlobStore):
        client = boto3.client("s3", endpoint_url=blobs.endpoint)
        assert client.list_objects_v2(Bucket=blobs.bucket).get("KeyCount", 0) == 0
    else:  # the dead writer's temporary file is left for `doctor --repair`
        assert isinstance(blobs, LocalBlobStore) and len(blobs.temp_files()) == 1


def _upload_under_way(blobs: BlobStore) -> bool:
    if isinstance(blobs, S3BlobStore):  # a multipart upload with at least one part sent
        client = boto3.client("s3", endpoint_url=blobs.endpoint)
        for up in client.list_multipart_uploads(Bucket=blobs.bucket).get("Uploads", []):
            parts = client.list_parts(Bucket=blobs.bucket, Key=up["Key"], UploadId=up["UploadId"])
            if parts.get("Parts"):
                return True
        return False
    assert isinstance(blobs, LocalBlobStore)
    temps = list(blobs.root.rglob(".tmp-*")) if blobs.root.exists() else []
    return any(p.stat().st_size > (10 << 20) for p in temps)


def test_wrong_or_missing_credentials_are_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "nobody")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with moto_s3_server_checking_credentials() as endpoint:
        blobs = open_blob_store(f"s3://bucket/p?endpoint={endpoint}")
        for attempt in (lambda: blobs.has(hashlib.sha256(b"x").hexdigest()), lambda: blobs.put_bytes(b"x")):
            with pytest.raises(BlobStoreUnavailableError) as err:
                attempt()
            message = str(err.value)
            assert "\n" not in message and "refused the credentials" in message and endpoint in message
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    blobs = open_blob_store(f"s3://bucket/p?endpoint=http://127.0.0.1:{free_port()}")
    with pytest.raises(BlobStoreUnavailableError, match="no credentials for the object store"):
        blobs.put_bytes(b"x")
