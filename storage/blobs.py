"""Immutable content-addressed blobs behind one interface, :class:`BlobStore`.

Two backends: a local directory (:class:`LocalBlobStore`, the default) and S3-compatible object
storage (:class:`~takeover.storage.s3blobs.S3BlobStore`), chosen by URL with :func:`open_blob_store`.
Callers name blobs by digest only; where the bytes live is the backend's business.

Local layout: ``<root>/blobs/sha256/ab/abcdef...`` where the file name is the sha256 hex digest of its
bytes. Writes go to a temporary file in the destination directory, are fsynced and then renamed
into place, so a reader sees either no blob or the whole blob. Stored blobs are made read-only.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from takeover.storage.errors import BlobNotFoundError, CorruptBlobError
from takeover.storage.tempfiles import locked_temp, stale

_CHUNK = 1 << 20
_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")


def is_digest(text: str) -> bool:
    """True if ``text`` looks like a sha256 hex digest (64 lowercase hex characters)."""
    return bool(_DIGEST_RE.match(text))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@runtime_checkable
class BlobReader(Protocol):
    """Where the bytes of blobs can be read by digest (a blob store, or a file not yet stored)."""

    def read_range(self, digest: str, start: int, length: int) -> bytes:
        """``length`` bytes of blob ``digest`` from byte ``start`` (fewer only at its end)."""
        ...


@runtime_checkable
class BlobStore(BlobReader, Protocol):
    """Immutable content-addressed blobs: a blob is stored whole under the sha256 of its bytes, or
    not at all. Every backend passes the same contract tests (tests/storage/test_blob_contract.py)."""

    url: str
    """Where the blobs live, as :func:`open_blob_store` takes it."""

    def has(self, digest: str) -> bool: ...
    def size(self, digest: str) -> int: ...
    def verify(self, digest: str) -> bool: ...
    def put_bytes(self, data: bytes) -> str: ...
    def put_file(self, path: Path | str, expected_digest: str | None = None) -> str: ...
    def put_stream(self, src: BinaryIO, digest: str) -> str: ...
    def adopt_file(self, path: Path | str, digest: str) -> str: ...
    def get_bytes(self, digest: str) -> bytes: ...
    def open(self, digest: str) -> BinaryIO: ...
    def fetch_to(self, digest: str, dest: Path) -> None: ...
    def remove(self, digest: str) -> None: ...
    def digests(self) -> Iterator[str]: ...
    def modified(self, digest: str) -> float:
        """When the blob was last written, in seconds since the epoch (a put of a blob already
        stored counts as a write): how old an unreferenced blob is, so that a blob another station
        wrote a moment ago and has not cataloged yet is not taken for an orphan."""
        ...

    def sub(self, name: str) -> BlobStore:
        """Another store of the same kind beside this one's blobs (``<url>/<name>``)."""
        ...


def check_digest(digest: str) -> str:
    if not is_digest(digest):
        raise ValueError(f"not a sha256 hex digest: {digest!r}")
    return digest


def put_file_by_stream(blobs: BlobStore, path: Path | str, expected_digest: str | None) -> str:
    """``blobs.put_file``: hash the file, then store its bytes, checked again on the way."""
    src = Path(path)
    digest = sha256_file(src)
    if expected_digest is not None and digest != expected_digest:
        raise CorruptBlobError(f"{src} hashes to {digest}, expected {expected_digest}")
    with open(src, "rb") as f:
        try:
            return blobs.put_stream(f, digest)
        except CorruptBlobError:
            raise CorruptBlobError(f"{src} changed while it was being stored") from None


class LocalFile:
    """A finished file not yet in a blob store (a camera log being recorded), read by range; the
    store adopts it by its ``path`` when the episode is added."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def read_range(self, digest: str, start: int, length: int) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(start)
            return f.read(length)

    def open(self, digest: str) -> BinaryIO:
        return open(self.path, "rb")

    def __repr__(self) -> str:
        return f"LocalFile({str(self.path)!r})"


def open_blob_store(url: str | Path) -> BlobStore:
    """The blob store at ``url``: a local folder (a path or ``file://`` URL; blobs go under
    ``<folder>/blobs/sha256``) or ``s3://bucket/prefix`` (S3-compatible object storage, see
    :mod:`takeover.storage.s3blobs` for the endpoint and credentials)."""
    text = str(url)
    if text.startswith("s3://"):
        from takeover.storage.s3blobs import S3BlobStore

        return S3BlobStore.from_url(text)
    if "://" in text and not text.startswith("file://"):
        scheme = text.split("://", 1)[0]
        raise ValueError(
            f"unsupported blob store URL {text!r}: use a folder, file:// or s3:// (not {scheme}://)"
        )
    return LocalBlobStore(Path(text.removeprefix("file://")).expanduser())


class LocalBlobStore:
    """Content-addressed blobs under ``root/blobs/sha256``. No I/O until a method is called."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._base = self.root / "blobs" / "sha256"
        self.url = str(self.root)

    def path(self, digest: str) -> Path:
        """Where the blob with this digest lives (whether or not it exists)."""
        if not is_digest(digest):
            raise ValueError(f"not a sha256 hex digest: {digest!r}")
        return self._base / digest[:2] / digest

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def verify(self, digest: str) -> bool:
        """True if the blob exists and its bytes hash to ``digest``."""
        p = self.path(digest)
        if not p.is_file():
            return False
        return sha256_file(p) == digest

    def put_bytes(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if not self._has_refreshed(digest):
            self._write(digest, lambda out: out.write(data))
        return digest

    def _has_refreshed(self, digest: str) -> bool:
        """True if the blob is stored; then its modification time is made now, so that a put of a
        blob an unreferenced copy already holds does not look old to `gc` before it is cataloged."""
        p = self.path(digest)
        try:
            os.utime(p)
        except FileNotFoundError:
            return False
        except OSError:  # another user's blob: it is there, its time cannot be changed by us
            return p.is_file()
        return True

    def modified(self, digest: str) -> float:
        try:
            return self.path(digest).stat().st_mtime
        except FileNotFoundError:
            raise self._missing(digest) from None

    def put_file(self, path: Path | str, expected_digest: str | None = None) -> str:
        """Store a copy of the file at ``path`` and return its digest (idempotent).

        If ``expected_digest`` is given and the file does not hash to it, raise
        :class:`CorruptBlobError` and store nothing.
        """
        return put_file_by_stream(self, path, expected_digest)

    def adopt_file(self, path: Path | str, digest: str) -> str:
        """Store the finished, already-durable file at ``path`` whose sha256 the caller computed while
        writing it, without copying: it is hard-linked into place (the caller's name stays valid until
        the caller removes it) and made read-only. Falls back to a verified copy where the file system
        has no hard links. ``takeover doctor`` verifies every blob's hash later.
        """
        src = Path(path)
        dest = self.path(digest)
        if self._has_refreshed(digest):
            return digest
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(src, 0o444)
        try:
            os.link(src, dest)
        except FileExistsError:
            pass
        except OSError:
            return self.put_file(src, expected_digest=digest)
        _fsync_dir(dest.parent)
        return digest

    def sub(self, name: str) -> LocalBlobStore:
        return LocalBlobStore(self.root / name)

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise self._missing(digest) from None

    def put_stream(self, src: BinaryIO, digest: str) -> str:
        """Store the bytes read from ``src`` to its end as blob ``digest``; if they do not hash to
        ``digest`` (or reading fails), store nothing and raise."""
        check_digest(digest)
        if self._has_refreshed(digest):
            return digest

        def copy(out: BinaryIO) -> None:
            h = hashlib.sha256()
            for chunk in iter(lambda: src.read(_CHUNK), b""):
                h.update(chunk)
                out.write(chunk)
            if h.hexdigest() != digest:
                raise CorruptBlobError(f"the bytes given for blob {digest} hash to {h.hexdigest()}")

        self._write(digest, copy)
        return digest

    def open(self, digest: str) -> BinaryIO:
        p = self.path(digest)
        try:
            return open(p, "rb")
        except FileNotFoundError:
            raise self._missing(digest) from None

    def get_bytes(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def read_range(self, digest: str, start: int, length: int) -> bytes:
        with self.open(digest) as f:
            f.seek(start)
            return f.read(length)

    def fetch_to(self, digest: str, dest: Path) -> None:
        """Copy the blob's bytes to the new file ``dest`` (not verified: the caller hashes it)."""
        with self.open(digest) as src, open(dest, "wb") as out:
            for chunk in iter(lambda: src.read(_CHUNK), b""):
                out.write(chunk)

    def _missing(self, digest: str) -> BlobNotFoundError:
        return BlobNotFoundError(f"blob {digest} is missing from {self._base}")

    def remove(self, digest: str) -> None:
        """Delete a blob (repair of a corrupt copy; normal operation never removes blobs)."""
        self.path(digest).unlink(missing_ok=True)

    def digests(self) -> Iterator[str]:
        if not self._base.is_dir():
            return
        for sub in sorted(self._base.iterdir()):
            if not sub.is_dir():
                continue
            for p in sorted(sub.iterdir()):
                if is_digest(p.name):
                    yield p.name

    def temp_files(self) -> list[Path]:
        """Leftovers of interrupted writes (``.tmp-*`` next to the blobs that no live writer holds)."""
        if not self._base.is_dir():
            return []
        return stale(sorted(self._base.glob("*/.tmp-*")))

    def _write(self, digest: str, fill: Callable[[BinaryIO], object]) -> None:
        dest = self.path(digest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with locked_temp(dest.parent, prefix=".tmp-") as (fd, tmp):
            with os.fdopen(os.dup(fd), "wb") as out:
                fill(out)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, dest)
        _fsync_dir(dest.parent)
