"""The pull cache: verified local copies of a version's blobs.

A blob is copied from the store into the cache and its bytes are checked against its sha256
before it is kept. Hashing a whole version again on every pull would cost a training job minutes
for a large version, so a cached blob that has been hashed carries a stamp (``<cache>/verified/
<digest>``: its size, modification time and inode at that moment). A later pull hashes it again
only when the file no longer matches its stamp (replaced, truncated, touched) or when asked to
(``verify="full"``, e.g. after a disk problem). A missing or corrupt copy is fetched again.

A blob is fetched range by range (:data:`RANGE_BYTES` at a time) into ``<cache>/partial/<digest>``
and moved into place only when all of it hashes to its digest. A pull that is interrupted keeps
the partial file, and the next pull continues it from where it stopped; if the finished bytes do
not match the hash after such a resume, the partial file was damaged: it is removed and the pull
fails saying so (running it again fetches that blob whole). Processes pulling into the same cache
take a lock per blob (one of 256 lock files, by the digest's first two hex digits), so a blob is
fetched once and the others wait for it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol

from takeover.storage.blobs import BlobReader, BlobStore, LocalBlobStore
from takeover.storage.errors import BlobNotFoundError, CorruptBlobError
from takeover.storage.progress import Advance, progress_bar

log = logging.getLogger(__name__)

Verify = Literal["stamp", "full"]

RANGE_BYTES = 8 << 20
"""How much of a blob one request fetches; a resumed pull continues from the last whole range."""


class Source(BlobReader, Protocol):
    """What a pull fetches from: blobs read by range, with a URL to name in messages."""

    url: str

    def size(self, digest: str) -> int: ...


@dataclass
class FetchStats:
    """What a pull did: blobs fetched (and their bytes), blobs already in the cache."""

    fetched: int = 0
    fetched_bytes: int = 0
    cached: int = 0

    def line(self) -> str:
        return (
            f"fetched {self.fetched} blobs ({self.fetched_bytes / 1e6:.1f} MB), {self.cached} already cached"
        )


@contextmanager
def blob_lock(folder: Path, digest: str) -> Iterator[None]:
    """Hold the lock of blob ``digest`` in ``folder`` (shared by the blobs of the same first two
    hex digits) until the block ends; waits while another process holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{digest[:2]}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # lets go of the lock


def _fingerprint(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}


def _stamp_path(cache: LocalBlobStore, digest: str) -> Path:
    return cache.root / "verified" / digest


def _stamped(cache: LocalBlobStore, digest: str) -> bool:
    try:
        stamp = json.loads(_stamp_path(cache, digest).read_text())
        return bool(stamp == _fingerprint(cache.path(digest)))
    except (OSError, ValueError):
        return False


def _stamp(cache: LocalBlobStore, digest: str) -> None:
    path = _stamp_path(cache, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{digest}.{os.getpid()}")
    tmp.write_text(json.dumps(_fingerprint(cache.path(digest))))
    os.replace(tmp, path)


def partial_path(cache: LocalBlobStore, digest: str) -> Path:
    """Where the bytes of blob ``digest`` fetched so far are kept until all of it is there."""
    return cache.root / "partial" / digest


def _hash_of(f: BinaryIO, h: Any) -> int:
    """Feed what ``f`` holds from its position on into the hash ``h``; return how many bytes."""
    n = 0
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
        n += len(chunk)
    return n


def fetch_blob(source: Source, cache: LocalBlobStore, digest: str, advance: Advance) -> int:
    """Fetch blob ``digest`` from ``source`` into ``cache``, continuing a partial download if
    one is there; return the bytes fetched now. The caller holds the blob's lock."""
    partial = partial_path(cache, digest)
    partial.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    with open(partial, "a+b") as out:
        out.seek(0)
        kept = pos = _hash_of(out, h)
        try:
            while True:
                data = source.read_range(digest, pos, RANGE_BYTES)
                if not data:
                    break
                out.write(data)
                out.flush()  # an interrupted pull keeps what it has
                h.update(data)
                pos += len(data)
                advance(len(data))
                if len(data) < RANGE_BYTES:
                    break
        except BlobNotFoundError:
            raise BlobNotFoundError(f"blob {digest} is missing from the store at {source.url}") from None
        os.fsync(out.fileno())
    if h.hexdigest() != digest:
        partial.unlink()
        if kept:
            raise CorruptBlobError(
                f"blob {digest[:12]}: the {kept} bytes kept from an interrupted pull were damaged (the "
                "finished blob does not match its hash); removed them: run the pull again to fetch "
                "that blob whole"
            )
        raise CorruptBlobError(
            f"blob {digest} in the store at {source.url} is corrupt (its bytes do not match its hash)"
        )
    dest = cache.path(digest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(partial, 0o444)
    os.replace(partial, dest)
    return pos - kept


def _cached_ok(cache: LocalBlobStore, digest: str, verify: Verify) -> bool:
    """True if the cached copy can be used; a corrupt copy is removed (and fetched again)."""
    if not cache.has(digest):
        return False
    if verify == "stamp" and _stamped(cache, digest):
        return True
    if cache.verify(digest):
        _stamp(cache, digest)
        return True
    log.warning("cached blob %s is corrupt; fetching it again", digest)
    cache.remove(digest)
    _stamp_path(cache, digest).unlink(missing_ok=True)
    return False


def fetch_verified(
    source: BlobStore | Source,
    cache: LocalBlobStore,
    digests: Iterable[str],
    verify: Verify = "stamp",
    *,
    progress: bool = False,
    stats: FetchStats | None = None,
    what: str = "blobs",
) -> list[Path]:
    """Make sure each blob is in ``cache`` with the right bytes; return the cached paths in order.

    ``verify="stamp"`` trusts a cached blob whose file still matches the stamp written when it was
    last hashed; ``"full"`` hashes every cached blob again. ``progress`` shows a bar of the bytes
    to fetch, named ``what`` (when stderr is a terminal); ``stats`` counts what was fetched.
    """
    if verify not in ("stamp", "full"):
        raise ValueError(f"verify must be 'stamp' or 'full', got {verify!r}")
    stats = stats if stats is not None else FetchStats()
    wanted = list(digests)
    locks = cache.root / "locks"
    missing = [d for d in dict.fromkeys(wanted) if not _cached_ok(cache, d, verify)]
    stats.cached += len(set(wanted)) - len(missing)
    total = sum(source.size(d) for d in missing) if progress and missing else None
    with progress_bar(f"pulling {what}", total, enabled=progress and bool(missing)) as advance:
        for digest in missing:
            with blob_lock(locks, digest):
                if cache.has(digest):  # another process fetched it meanwhile
                    _stamp(cache, digest)
                    continue
                stats.fetched_bytes += fetch_blob(source, cache, digest, advance)
                stats.fetched += 1
            _stamp(cache, digest)
    return [cache.path(d) for d in wanted]


class OpenBlobs:
    """Reads the blobs of a local cache by range through files it keeps open (at most ``max_open``
    per process, least recently used closed first): one ``pread`` per read, where opening the
    file for every camera frame would cost as much again. Each process opens its own files (a
    DataLoader worker inherits none); nothing but the folder crosses to a spawned worker."""

    def __init__(self, cache: LocalBlobStore, max_open: int = 128) -> None:
        self.cache = cache
        self.url = cache.url
        self.max_open = max(1, max_open)
        self._fds: OrderedDict[str, int] = OrderedDict()
        self._pid = os.getpid()

    def read_range(self, digest: str, start: int, length: int) -> bytes:
        if self._pid != os.getpid():  # the parent's descriptors are the parent's to close
            self._fds, self._pid = OrderedDict(), os.getpid()
        fd = self._fds.get(digest)
        if fd is None:
            try:
                fd = os.open(self.cache.path(digest), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                raise BlobNotFoundError(
                    f"blob {digest} is missing from the pull cache at {self.url}"
                ) from None
            self._fds[digest] = fd
            while len(self._fds) > self.max_open:
                os.close(self._fds.popitem(last=False)[1])
        else:
            self._fds.move_to_end(digest)
        return os.pread(fd, length, start)

    def close(self) -> None:
        """Close the files this process has open (they reopen on the next read)."""
        if self._pid == os.getpid():
            for fd in self._fds.values():
                os.close(fd)
        self._fds = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        return {"cache": self.cache, "max_open": self.max_open}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["cache"], state["max_open"])  # type: ignore[misc]
