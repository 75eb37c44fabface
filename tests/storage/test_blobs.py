from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from takeover.storage.blobs import LocalBlobStore
from takeover.storage.errors import BlobNotFoundError, CorruptBlobError


def _corrupt(path: Path) -> None:
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_put_bytes_layout_and_read_only(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path)
    data = b"hello episode"
    digest = blobs.put_bytes(data)
    assert digest == hashlib.sha256(data).hexdigest()
    p = blobs.path(digest)
    assert p == tmp_path / "blobs" / "sha256" / digest[:2] / digest
    assert p.read_bytes() == data
    assert not p.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert blobs.has(digest) and blobs.verify(digest)
    assert list(blobs.digests()) == [digest]


def test_put_file_is_idempotent_and_leaves_no_temp_files(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3 << 20))  # several copy chunks
    blobs = LocalBlobStore(tmp_path / "store")
    d1 = blobs.put_file(src)
    first = blobs.path(d1).stat()
    d2 = blobs.put_file(src)
    assert d1 == d2 == hashlib.sha256(src.read_bytes()).hexdigest()
    again = blobs.path(d1).stat()
    assert again.st_ino == first.st_ino  # not rewritten; only its time renewed (see BlobStore.modified)
    assert again.st_mtime_ns >= first.st_mtime_ns
    files = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert files == [blobs.path(d1)]


def test_interrupted_write_leaves_no_blob(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path)

    class Boom(Exception):
        pass

    def fail_midway(out: object) -> None:
        out.write(b"partial")  # type: ignore[attr-defined]
        raise Boom

    digest = "0" * 64
    with pytest.raises(Boom):
        blobs._write(digest, fail_midway)
    assert not blobs.has(digest)
    assert list(blobs.path(digest).parent.iterdir()) == []


def test_verify_detects_corruption_and_missing(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path)
    digest = blobs.put_bytes(b"x" * 1000)
    _corrupt(blobs.path(digest))
    assert blobs.has(digest) and not blobs.verify(digest)
    assert not blobs.verify("1" * 64)


def test_put_file_checks_expected_digest(tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"abc")
    blobs = LocalBlobStore(tmp_path / "s")
    with pytest.raises(CorruptBlobError, match="expected"):
        blobs.put_file(src, expected_digest="2" * 64)
    assert list(blobs.digests()) == []


def test_bad_digest_and_missing_blob(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path)
    with pytest.raises(ValueError, match="sha256"):
        blobs.path("../etc/passwd")
    with pytest.raises(BlobNotFoundError):
        blobs.open("3" * 64)
