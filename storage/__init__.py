"""Dataset storage: episode files, content-addressed blobs, the catalog, versions and tags, pull.

Names are imported on first use, so ``import takeover.storage`` stays light and never imports
torch; ``from takeover.storage import pull`` loads the torch-side Dataset only then.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from takeover.storage.blobs import BlobStore as BlobStore
    from takeover.storage.blobs import LocalBlobStore as LocalBlobStore
    from takeover.storage.blobs import open_blob_store as open_blob_store
    from takeover.storage.catalog import Catalog as Catalog
    from takeover.storage.errors import StorageError as StorageError
    from takeover.storage.manifest import Manifest as Manifest
    from takeover.storage.manifest import ManifestEntry as ManifestEntry
    from takeover.storage.pull import EpisodeDataset as EpisodeDataset
    from takeover.storage.pull import pull as pull
    from takeover.storage.store import Store as Store

_LAZY = {
    "BlobStore": "takeover.storage.blobs",
    "LocalBlobStore": "takeover.storage.blobs",
    "open_blob_store": "takeover.storage.blobs",
    "Catalog": "takeover.storage.catalog",
    "StorageError": "takeover.storage.errors",
    "Manifest": "takeover.storage.manifest",
    "ManifestEntry": "takeover.storage.manifest",
    "EpisodeDataset": "takeover.storage.pull",
    "pull": "takeover.storage.pull",
    "Store": "takeover.storage.store",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


class _StoragePackage(types.ModuleType):
    """Keeps ``takeover.storage.pull`` meaning the function: importing the submodule of the same
    name would otherwise bind the module over it (the submodule stays in ``sys.modules``)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "pull" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _StoragePackage
