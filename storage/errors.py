"""Errors raised by storage. Each one is a user-facing condition with a message a person can act on."""

from __future__ import annotations

from collections.abc import Sequence


def listing(items: Sequence[str], shown: int = 5) -> str:
    """The first ``shown`` items, comma-separated, and how many more there are (for one-line errors)."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


class StorageError(Exception):
    """Base class of every error storage raises on purpose."""


class StoreNotFoundError(StorageError):
    """No store at the given path."""


class StoreExistsError(StorageError):
    """A store (or something else) already occupies the path a new store was asked for."""


class UnknownEpisodeError(StorageError):
    """An episode id the catalog does not hold."""


class EpisodeExistsError(StorageError):
    """An episode id is already cataloged with different content."""


class UnknownTagError(StorageError):
    """A tag name that names no version."""


class TagExistsError(StorageError):
    """A tag name is already in use; tags are never moved or reused."""


class UnknownVersionError(StorageError):
    """A version digest the catalog does not hold."""


class EmptySelectionError(StorageError):
    """A version would contain no episodes."""


class BlobNotFoundError(StorageError):
    """A blob digest with no file behind it."""


class BlobStoreUnavailableError(StorageError):
    """The blob store (object storage) cannot be reached, or refuses the credentials."""


class CorruptBlobError(StorageError):
    """A blob whose bytes do not hash to its digest."""


class EpisodeFileError(StorageError):
    """An episode file that cannot be read as one."""


class ReadOnlyStoreError(StorageError):
    """A write to a store (or catalog) this process may only read."""


class DiskFullError(StorageError):
    """The disk (or the database server) holding the store has no space left."""


class CorruptCatalogError(StorageError):
    """A catalog database that cannot be read as one."""


class CatalogUnavailableError(StorageError):
    """The catalog database cannot be opened, reached or locked."""


class SeedsExhaustedError(StorageError):
    """No collection seed is left to hand out."""


class SchemaTooNewError(StorageError):
    """A catalog whose schema a newer version of takeover made."""


class VersionChangeError(StorageError):
    """A change to a parent version that cannot be made (an id it lacks, a step range outside an
    episode, ...)."""


class InvalidLabelError(StorageError):
    """A label or label revision that cannot be stored as given (a value outside its vocabulary, a
    quality on a failure, a parent of another episode, ...)."""
