"""Pull a tagged version into a verified local cache and read it as a torch Dataset.

The only storage module that imports torch.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from takeover.storage.blobs import BlobReader, LocalBlobStore
from takeover.storage.cache import Verify, fetch_verified
from takeover.storage.coverage import CameraCoverage, camera_masks, masks_coverage
from takeover.storage.episode_file import EpisodeHeader, EpisodeReader, read_header, read_timeline
from takeover.storage.errors import EpisodeFileError, StorageError
from takeover.storage.manifest import Manifest
from takeover.storage.paths import default_cache_root, default_store_root
from takeover.storage.schema import EpisodeMeta
from takeover.storage.store import Store

Item = dict[str, torch.Tensor]


def episode_success(meta: EpisodeMeta) -> bool:
    """The operator's verdict if given ('success'/'failure'), else the station's flag, else False."""
    if meta.outcome == "success":
        return True
    if meta.outcome == "failure":
        return False
    return bool(meta.success)


def decode_rgb_chw(jpeg: bytes) -> np.ndarray:
    """JPEG bytes (encoded from RGB after RGB->BGR) -> uint8 (3, H, W) RGB."""
    bgr = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise EpisodeFileError("a camera frame is not a decodable JPEG")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


def _row(r: EpisodeReader, name: str, step: int) -> torch.Tensor:
    return torch.from_numpy(r.array(name)[step].astype(np.float32, copy=True))


class EpisodeDataset(Dataset[Item]):
    """Every step of every episode of one version, in manifest order (episode id, then step).

    Item keys: ``state`` float32 (S,), ``action`` / ``proposed_action`` float32 (A,),
    ``control_source`` int64, ``timestamp`` float64, ``episode_index`` int64, ``step_index``
    int64, ``success`` bool, and for every camera of any episode ``images.<camera>`` uint8
    (3, H, W) RGB, the latest frame captured at or before the step, with ``images.<camera>.valid``
    bool. Where the step has no real frame of the camera (the episode lacks the camera, the camera
    was down, or had not delivered a frame yet; see :mod:`takeover.storage.coverage`) the image is
    zeros and ``valid`` is false. :attr:`camera_coverage` says how much of the version each
    camera covers.

    Nothing is opened here; each process (DataLoader worker) opens the files it reads, and at
    most ``max_open_files`` stay open per process.
    """

    def __init__(
        self,
        files: Sequence[Path],
        headers: Sequence[EpisodeHeader],
        version: str,
        manifest: Manifest,
        *,
        max_open_files: int = 64,
        blobs: BlobReader | None = None,
    ) -> None:
        if len(files) != len(headers):
            raise ValueError("one header per file")
        self.version = version
        self.manifest = manifest
        self.episodes: list[EpisodeMeta] = [h.meta for h in headers]
        self.files = list(files)
        self.cameras: list[str] = sorted({c for h in headers for c in h.cameras})
        shapes = {c: next(h.cameras[c] for h in headers if c in h.cameras) for c in self.cameras}
        self._shapes = [{**shapes, **h.cameras} for h in headers]
        self._valid = [camera_masks(read_timeline(f), self.cameras) for f in self.files]
        self.camera_coverage: dict[str, CameraCoverage] = masks_coverage(
            [m.episode_id for m in self.episodes], self._valid
        )
        """Per camera, how much of the version has a real frame of it (see :meth:`CameraCoverage.line`)."""
        self._success = [episode_success(h.meta) for h in headers]
        lengths = np.array([h.num_steps for h in headers], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self._readers = [EpisodeReader(f, blobs) for f in self.files]
        self._max_open = max(1, max_open_files)
        self._lru: OrderedDict[int, None] = OrderedDict()
        self._lru_pid = -1

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """(episode_index, step_index) of a flat item index."""
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {n} steps")
        ep = int(np.searchsorted(self._offsets, index, side="right")) - 1
        return ep, index - int(self._offsets[ep])

    def _reader(self, ep: int) -> EpisodeReader:
        if self._lru_pid != os.getpid():
            self._lru, self._lru_pid = OrderedDict(), os.getpid()
        self._lru[ep] = None
        self._lru.move_to_end(ep)
        while len(self._lru) > self._max_open:
            old, _ = self._lru.popitem(last=False)
            self._readers[old].close()
        return self._readers[ep]

    def __getitem__(self, index: int) -> Item:
        ep, step = self.locate(int(index))
        r = self._reader(ep)
        item: Item = {
            "state": _row(r, "state", step),
            "action": _row(r, "action", step),
            "proposed_action": torch.from_numpy(
                r.array("proposed_action")[step].astype(np.float32, copy=True)
            ),
            "control_source": torch.tensor(int(r.array("control_source")[step]), dtype=torch.int64),
            "timestamp": torch.tensor(float(r.array("timestamps")[step]), dtype=torch.float64),
            "episode_index": torch.tensor(ep, dtype=torch.int64),
            "step_index": torch.tensor(step, dtype=torch.int64),
            "success": torch.tensor(self._success[ep], dtype=torch.bool),
        }
        for cam in self.cameras:
            valid = bool(self._valid[ep][cam][step])
            jpeg = r.frame_at(cam, step) if valid else None
            if jpeg is None:
                h, w = self._shapes[ep][cam]
                item[f"images.{cam}"] = torch.zeros((3, h, w), dtype=torch.uint8)
            else:
                item[f"images.{cam}"] = torch.from_numpy(decode_rgb_chw(jpeg))
            item[f"images.{cam}.valid"] = torch.tensor(jpeg is not None, dtype=torch.bool)
        return item

    def close(self) -> None:
        """Close the files this process has open (they reopen on the next access)."""
        for r in self._readers:
            r.close()
        self._lru.clear()


def pull(
    tag: str,
    store: Store | Path | str | None = None,
    cache_dir: Path | str | None = None,
    verify: Verify = "stamp",
    *,
    catalog_url: str | None = None,
    blob_url: str | None = None,
) -> EpisodeDataset:
    """Resolve ``tag``, copy its episode files into a verified cache, and return a Dataset over them.

    ``store`` is an open :class:`Store`, the path of one, or None for the default store;
    ``catalog_url`` / ``blob_url`` name its catalog database and blob store when they are not the
    store folder's own (as in the configuration);
    ``cache_dir`` defaults to :func:`default_cache_root`. Every blob is hashed when it enters the
    cache; ``verify="stamp"`` (the default) hashes a cached blob again only if its file changed
    since (see :mod:`takeover.storage.cache`), ``verify="full"`` hashes every blob again.
    """
    own = not isinstance(store, Store)
    st = (
        store
        if isinstance(store, Store)
        else Store.open(Path(store) if store else default_store_root(), catalog_url, blob_url=blob_url)
    )
    try:
        version = st.resolve(tag)
        cache = LocalBlobStore(Path(cache_dir) if cache_dir else default_cache_root())
        files = fetch_verified(st.blobs, cache, [e.digest for e in version.manifest.episodes], verify)
        headers = [read_header(f) for f in files]
        # Frames kept in separate blobs follow their episode files into the cache.
        frame_blobs = sorted({d for h in headers for d in h.frame_blobs})
        fetch_verified(st.blobs, cache, frame_blobs, verify)
    finally:
        if own:
            st.close()
    for entry, header in zip(version.manifest.episodes, headers, strict=True):
        if header.meta.episode_id != entry.episode_id or header.num_steps != entry.num_steps:
            raise StorageError(
                f"version {version.digest[:12]}: blob {entry.digest[:12]} does not hold episode "
                f"{entry.episode_id} with {entry.num_steps} steps"
            )
    return EpisodeDataset(files, headers, version.digest, version.manifest, blobs=cache)
