"""A bounded cache of blobs on local disk, shared by the processes of one machine: what a
streaming pull reads through, so that a version larger than the local disk can be trained on.

A blob is fetched whole from the source store on its first access, hashed on the way in (a blob
whose bytes do not match its digest is never used), and kept under ``<root>/blobs/sha256`` like
any local blob. Each access marks the blob as used (its modification time); after a fetch, the
least recently used blobs are removed until the cache holds at most ``max_bytes`` (a single blob
larger than that is kept alone). Processes sharing the folder (DataLoader workers, several
training jobs) take a lock per blob, so a blob two of them want is fetched once while the other
waits, and one lock for evicting. A process that has a blob open keeps reading it after another
evicts it (POSIX keeps an unlinked file's bytes until it is closed), so the bound is exceeded by
at most the blobs open at that moment.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from takeover.storage.blobs import BlobStore, LocalBlobStore, is_digest, open_blob_store
from takeover.storage.cache import blob_lock
from takeover.storage.errors import BlobNotFoundError, CorruptBlobError

log = logging.getLogger(__name__)


@contextmanager
def _evict_lock(root: Path) -> Iterator[None]:
    fd = os.open(root / "evict.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class BoundedBlobCache:
    """Blobs of ``source`` read through a cache folder ``root`` of at most ``max_bytes``.

    A :class:`~takeover.storage.blobs.BlobReader` (frames are read from it by range); no I/O in
    the constructor; safe to hand to DataLoader workers (fork or spawn): it holds no open file.
    """

    def __init__(self, source: BlobStore, root: Path | str, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError(f"a cache bound is a positive number of bytes, got {max_bytes}")
        self.source_url = source.url
        self._source: BlobStore | None = source
        self._pid = os.getpid()
        self.root = Path(root)
        self.max_bytes = int(max_bytes)
        self._local = LocalBlobStore(self.root)
        self.url = self._local.url

    @property
    def source(self) -> BlobStore:
        """The store the blobs come from, opened again by its URL in each process (a client of
        object storage cannot cross a fork)."""
        if self._source is None or self._pid != os.getpid():
            self._source, self._pid = open_blob_store(self.source_url), os.getpid()
        return self._source

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_source": None}

    def path(self, digest: str) -> Path:
        """The local file of blob ``digest``, fetched (and verified) first if it is not there."""
        p = self._local.path(digest)
        try:
            os.utime(p)  # marks it used; fails if it is not there
            return p
        except FileNotFoundError:
            pass
        with blob_lock(self.root / "locks", digest):
            if p.is_file():  # another process fetched it while this one waited
                os.utime(p)
                return p
            try:
                with self.source.open(digest) as src:
                    self._local.put_stream(src, digest)  # hashed on the way in
            except BlobNotFoundError:
                raise BlobNotFoundError(
                    f"blob {digest} is missing from the store at {self.source.url}"
                ) from None
            except CorruptBlobError:
                raise CorruptBlobError(
                    f"blob {digest} in the store at {self.source.url} is corrupt (its bytes do not "
                    "match its hash)"
                ) from None
        self._evict(keep=digest)
        return p

    def read_range(self, digest: str, start: int, length: int) -> bytes:
        for _ in range(3):
            p = self.path(digest)
            try:
                with open(p, "rb") as f:
                    f.seek(start)
                    return f.read(length)
            except FileNotFoundError:
                continue  # evicted by another process between the two: fetch it again
        raise BlobNotFoundError(
            f"blob {digest} keeps being evicted from the cache at {self.root}: raise its bound"
        )

    def used_bytes(self) -> int:
        """What the cached blobs take now."""
        return sum(size for _, size, _ in self._entries())

    def _entries(self) -> list[tuple[int, int, Path]]:
        """(last use, size, path) of every cached blob."""
        out: list[tuple[int, int, Path]] = []
        base = self.root / "blobs" / "sha256"
        if not base.is_dir():
            return out
        for sub in os.scandir(base):
            if not sub.is_dir():
                continue
            for e in os.scandir(sub.path):
                if not is_digest(e.name):
                    continue
                try:
                    st = e.stat()
                except FileNotFoundError:
                    continue
                out.append((st.st_mtime_ns, st.st_size, Path(e.path)))
        return out

    def _evict(self, keep: str) -> None:
        with _evict_lock(self.root):
            entries = sorted(self._entries())
            total = sum(size for _, size, _ in entries)
            for _, size, path in entries:
                if total <= self.max_bytes:
                    break
                if path.name == keep:
                    continue
                path.unlink(missing_ok=True)
                total -= size
        if total > self.max_bytes:
            log.warning("blob %s alone is larger than the cache bound (%d bytes)", keep, self.max_bytes)
