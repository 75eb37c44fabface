"""The pull cache: verified local copies of a version's blobs.

Every cached file is checked against its sha256 on each pull; a missing or corrupt copy is
(re-)fetched from the store, and the fetched bytes are checked before they are kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from takeover.storage.blobs import LocalBlobStore
from takeover.storage.errors import BlobNotFoundError, CorruptBlobError

log = logging.getLogger(__name__)


def fetch_verified(source: LocalBlobStore, cache: LocalBlobStore, digests: Iterable[str]) -> list[Path]:
    """Make sure each blob is in ``cache`` with the right bytes; return the cached paths in order."""
    paths = []
    for digest in digests:
        if cache.has(digest):
            if cache.verify(digest):
                paths.append(cache.path(digest))
                continue
            log.warning("cached blob %s is corrupt; fetching it again", digest)
            cache.remove(digest)
        src = source.path(digest)
        if not src.is_file():
            raise BlobNotFoundError(f"blob {digest} is missing from the store at {source.root}")
        try:
            cache.put_file(src, expected_digest=digest)
        except CorruptBlobError:
            raise CorruptBlobError(
                f"blob {digest} in the store at {source.root} is corrupt (its bytes do not match its hash)"
            ) from None
        paths.append(cache.path(digest))
    return paths
