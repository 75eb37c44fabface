"""The pull cache: verified local copies of a version's blobs.

A blob is copied from the store into the cache and its bytes are checked against its sha256
before it is kept. Hashing a whole version again on every pull would cost a training job minutes
for a large version, so a cached blob that has been hashed carries a stamp (``<cache>/verified/
<digest>``: its size, modification time and inode at that moment). A later pull hashes it again
only when the file no longer matches its stamp (replaced, truncated, touched) or when asked to
(``verify="full"``, e.g. after a disk problem). A missing or corrupt copy is fetched again.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from takeover.storage.blobs import BlobStore, LocalBlobStore
from takeover.storage.errors import BlobNotFoundError, CorruptBlobError

log = logging.getLogger(__name__)

Verify = Literal["stamp", "full"]


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


def fetch_verified(
    source: BlobStore, cache: LocalBlobStore, digests: Iterable[str], verify: Verify = "stamp"
) -> list[Path]:
    """Make sure each blob is in ``cache`` with the right bytes; return the cached paths in order.

    ``verify="stamp"`` trusts a cached blob whose file still matches the stamp written when it was
    last hashed; ``"full"`` hashes every cached blob again.
    """
    if verify not in ("stamp", "full"):
        raise ValueError(f"verify must be 'stamp' or 'full', got {verify!r}")
    paths = []
    for digest in digests:
        if cache.has(digest):
            if verify == "stamp" and _stamped(cache, digest):
                paths.append(cache.path(digest))
                continue
            if cache.verify(digest):
                _stamp(cache, digest)
                paths.append(cache.path(digest))
                continue
            log.warning("cached blob %s is corrupt; fetching it again", digest)
            cache.remove(digest)
            _stamp_path(cache, digest).unlink(missing_ok=True)
        try:
            with source.open(digest) as src:
                cache.put_stream(src, digest)
        except BlobNotFoundError:
            raise BlobNotFoundError(f"blob {digest} is missing from the store at {source.url}") from None
        except CorruptBlobError:
            raise CorruptBlobError(
                f"blob {digest} in the store at {source.url} is corrupt (its bytes do not match its hash)"
            ) from None
        _stamp(cache, digest)
        paths.append(cache.path(digest))
    return paths
