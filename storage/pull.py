"""Pull a tagged version into a verified local cache and read it as a torch Dataset.

The only storage module that imports torch. Three ways to read a version:

- a verified copy (the default): the episode files, and the frame blobs of the cameras asked for,
  are copied into the pull cache before the Dataset is made (resumable, see
  :mod:`takeover.storage.cache`);
- streaming (``stream=True``): nothing is copied up front; each blob is fetched on first access
  into a bounded cache shared by the processes of the machine
  (:mod:`takeover.storage.blob_cache`), for versions larger than the local disk;
- either one with a training cache (``image_size=(H, W)``): the frames are decoded and resized
  once into memory-mapped arrays (:mod:`takeover.storage.train_cache`), read without decoding.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from takeover.storage.blob_cache import BoundedBlobCache
from takeover.storage.blobs import BlobReader, LocalBlobStore
from takeover.storage.cache import FetchStats, OpenBlobs, Verify, fetch_verified
from takeover.storage.coverage import CameraCoverage, camera_masks, masks_coverage
from takeover.storage.episode_file import (
    EpisodeHeader,
    EpisodeReader,
    Timeline,
    read_header,
    read_timeline,
)
from takeover.storage.errors import EpisodeFileError, StorageError
from takeover.storage.manifest import Manifest, ManifestEntry, label_of
from takeover.storage.paths import default_cache_root, default_store_root
from takeover.storage.pull_keys import (
    IMAGE_PREFIX,
    LABEL_CODES,
    STEP_ARRAYS,
    Deltas,
    DerivedSteps,
    check_choice,
    derived_wanted,
    window,
)
from takeover.storage.pull_keys import (
    KeyChoiceError as KeyChoiceError,  # what pull raises for keys, importable from here
)
from takeover.storage.schema import EpisodeMeta
from takeover.storage.store import Store
from takeover.storage.train_cache import FrameArray, Size, build, cache_path, is_built

if TYPE_CHECKING:
    from takeover.storage.video import VideoFrames, VideoIndex

Item = dict[str, torch.Tensor]


@runtime_checkable
class HoldsFiles(Protocol):
    """A blob reader that keeps files open (:class:`OpenBlobs`), which :meth:`EpisodeDataset.close` closes."""

    def close(self) -> None: ...


def episode_success(entry: ManifestEntry) -> bool:
    """The label the version gives the episode if it is 'success'/'failure' (the operator's verdict,
    or the label it pins), else the station's flag, else False."""
    if entry.outcome == "success":
        return True
    if entry.outcome == "failure":
        return False
    return bool(entry.success)


def decode_rgb_chw(jpeg: bytes) -> np.ndarray:
    """JPEG bytes (encoded from RGB after RGB->BGR) -> uint8 (3, H, W) RGB."""
    bgr = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise EpisodeFileError("a camera frame is not a decodable JPEG")
    blue, green, red = cv2.split(bgr)  # planes: a third of the time of cvtColor + a transposed copy
    return np.stack((red, green, blue))


class EpisodeDataset(Dataset[Item]):
    """Every step of every episode of one version (the step range the version takes of each), in
    manifest order (episode id, then step).

    Item keys: ``state`` float32 (S,), ``action`` / ``proposed_action`` float32 (A,),
    ``control_source`` int64, ``timestamp`` float64, ``episode_index`` int64, ``step_index``
    int64 (the step in its episode), ``success`` bool, and for every camera of any episode
    ``images.<camera>`` uint8 (3, H, W) RGB, the latest frame captured at or before the step, with
    ``images.<camera>.valid`` bool. Where the step has no real frame of the camera (the episode
    lacks the camera, the camera was down, or had not delivered a frame yet; see
    :mod:`takeover.storage.coverage`) the image is zeros and ``valid`` is false.
    :attr:`camera_coverage` says how much of the version each camera covers.

    ``keys`` keeps only the keys named (an image's ``.valid`` comes with it); no frame is read or
    decoded when no image key is asked for. ``deltas`` turns a key into a window of the steps at
    those offsets, shape (K, ...), with ``<key>.pad`` bool (K,) true where the offset falls outside
    the episode's range and the edge step's value stands in (for images, ``.valid`` is (K,) too).
    ``derived``: the derived keys of a version that pins training labels (``control_class`` int64,
    ``value_target`` float32, ``improvement`` bool; :mod:`takeover.storage.pull_keys`).

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
        keys: Sequence[str] | None = None,
        deltas: Deltas | None = None,
        timelines: Sequence[Timeline] | None = None,
        streamed: BoundedBlobCache | None = None,
        videos: Sequence[Mapping[str, tuple[str, VideoIndex]]] | None = None,
        derived: DerivedSteps | None = None,
    ) -> None:
        if len(files) != len(headers) or len(headers) != len(manifest.episodes):
            raise ValueError("one header per file, one file per episode of the manifest")
        self.version = version
        """The version's digest: what a training run records to name its data."""
        self.manifest = manifest
        self.episodes: list[EpisodeMeta] = [h.meta for h in headers]
        self.files = list(files)
        self.cameras: list[str] = sorted({c for h in headers for c in h.cameras})
        self._derived = derived or DerivedSteps([], [])
        self._keys, self._windows = check_choice(self.cameras, keys, deltas, self._derived.keys)
        shapes = {c: next(h.cameras[c] for h in headers if c in h.cameras) for c in self.cameras}
        self._shapes = [{**shapes, **h.cameras} for h in headers]
        timelines = timelines if timelines is not None else [read_timeline(f) for f in self.files]
        self._valid = [camera_masks(t, self.cameras) for t in timelines]
        self._ranges = [(e.start, e.stop) for e in manifest.episodes]
        shown = [{c: m[c][a:b] for c in m} for m, (a, b) in zip(self._valid, self._ranges, strict=True)]
        self.camera_coverage: dict[str, CameraCoverage] = masks_coverage(
            [m.episode_id for m in self.episodes], shown
        )
        """Per camera, how much of the version has a real frame of it (see :meth:`CameraCoverage.line`)."""
        self._success = [episode_success(e) for e in manifest.episodes]
        self.episode_labels: list[str] = [label_of(e) for e in manifest.episodes]
        """Per episode, the outcome label the version gives it ('success', 'near_success' or
        'failure': the label its annotators' revisions resolved to, else the operator's verdict,
        else the station's flag); items carry it as ``label`` (:data:`LABEL_CODES`)."""
        lengths = np.array([b - a for a, b in self._ranges], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self._length = int(self._offsets[-1])
        self._arrays = [k for k in STEP_ARRAYS if self.wants(k)]
        self._derived_keys = [k for k in self._derived.keys if self.wants(k)]
        self._readers = [EpisodeReader(f, blobs) for f in self.files]
        self._blobs = blobs
        self._streamed = streamed
        self._train: dict[str, FrameArray] = {}
        self.image_size: Size | None = None
        """The size of the training cache the images come from (None: decoded at recorded size)."""
        self._max_open = max(1, max_open_files)
        self._lru: OrderedDict[int, None] = OrderedDict()
        self._lru_pid = -1
        self._videos = list(videos) if videos is not None else [{} for _ in headers]
        """Per episode, the cameras the version reads from a transcoded video: (blob, frame index)."""
        self._decoders: dict[tuple[int, str], VideoFrames] = {}
        self._decoders_pid = -1
        self._inherited: list[dict[tuple[int, str], VideoFrames]] = []
        self.fetched = FetchStats()
        """What the pull that made this Dataset fetched."""

    def __len__(self) -> int:
        return self._length

    def wants(self, key: str) -> bool:
        """True if items have ``key`` (every key, unless ``keys`` chose some)."""
        return self._keys is None or key in self._keys

    @property
    def image_cameras(self) -> list[str]:
        """The cameras whose images items have."""
        return [c for c in self.cameras if self.wants(IMAGE_PREFIX + c)]

    def locate(self, index: int) -> tuple[int, int]:
        """(episode_index, step_index) of a flat item index (the step counted in its episode)."""
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {n} steps")
        ep = int(np.searchsorted(self._offsets, index, side="right")) - 1
        return ep, self._ranges[ep][0] + index - int(self._offsets[ep])

    def _row(self, ep: int, step: int) -> int:
        return int(self._offsets[ep]) + step - self._ranges[ep][0]

    def _reader(self, ep: int) -> EpisodeReader:
        if self._lru_pid != os.getpid():
            self._lru, self._lru_pid = OrderedDict(), os.getpid()
        self._lru[ep] = None
        self._lru.move_to_end(ep)
        while len(self._lru) > self._max_open:
            old, _ = self._lru.popitem(last=False)
            self._readers[old].close()
        reader = self._readers[ep]
        if self._streamed is not None and not reader.is_open:
            self._streamed.path(self.manifest.episodes[ep].digest)  # fetched again if evicted
        return reader

    def _frame(self, ep: int, camera: str, step: int) -> np.ndarray | None:
        """The frame of ``camera`` shown at ``step`` of episode ``ep`` (the latest captured at or
        before it) as uint8 (3, H, W) RGB at its recorded size; None if there is none yet.
        Every camera frame the Dataset shows, or puts in a training cache, is read here: from the
        recorded JPEG frames, or from the transcoded video the version pins for the camera (frame
        ``i`` of the video is frame ``i`` of the recorded stream)."""
        reader = self._reader(ep)
        if camera not in self._videos[ep]:
            jpeg = reader.frame_at(camera, step)
            return None if jpeg is None else decode_rgb_chw(jpeg)
        i = reader.frame_index(camera, step)
        if i is None:
            return None
        rgb = self._decoder(ep, camera)[i]
        return np.ascontiguousarray(rgb.transpose(2, 0, 1))

    def _decoder(self, ep: int, camera: str) -> VideoFrames:
        """This process's decoder of the video of ``camera`` in episode ``ep`` (a decoder's state
        never crosses a fork: each worker makes its own)."""
        from takeover.storage.video import VideoFrames

        if self._decoders_pid != os.getpid():
            # The decoders of the process this one was forked from are kept, never freed here:
            # freeing a codec's native state in a forked child is not safe.
            self._inherited.append(self._decoders)
            self._decoders, self._decoders_pid = {}, os.getpid()
        decoder = self._decoders.get((ep, camera))
        if decoder is None:
            if self._blobs is None:
                raise StorageError("a Dataset reading transcoded videos needs the blob store they are in")
            digest, index = self._videos[ep][camera]
            decoder = self._decoders[(ep, camera)] = VideoFrames(self._blobs, digest, index)
        return decoder

    def _image(self, ep: int, camera: str, step: int) -> tuple[np.ndarray, bool]:
        train = self._train.get(camera)
        if self._valid[ep][camera][step]:
            img = train.frame(self._row(ep, step)) if train is not None else self._frame(ep, camera, step)
            if img is not None:
                return img, True
        h, w = self.image_size if train is not None and self.image_size else self._shapes[ep][camera]
        return np.zeros((3, h, w), dtype=np.uint8), False

    def _put(
        self, item: Item, key: str, at: Callable[[Any], np.ndarray], step: int, start: int, stop: int
    ) -> None:
        """``item[key]``: the values ``at`` gives at ``step``, or at its window (with ``.pad``)."""
        offsets = self._windows.get(key)
        if offsets is None:
            item[key] = torch.from_numpy(at(step))
        else:
            steps, pad = window(step, offsets, start, stop)
            item[key] = torch.from_numpy(at(steps))
            item[f"{key}.pad"] = torch.from_numpy(pad)

    def __getitem__(self, index: int) -> Item:
        ep, step = self.locate(int(index))
        start, stop = self._ranges[ep]
        item: Item = {}
        if self._arrays:
            r = self._reader(ep)
            for key in self._arrays:
                name, dtype = STEP_ARRAYS[key]
                self._put(item, key, functools.partial(_taken, r.array(name), dtype), step, start, stop)
        for key in self._derived_keys:
            self._put(item, key, functools.partial(self._derived.at, key, ep, start), step, start, stop)
        if self.wants("episode_index"):
            item["episode_index"] = torch.tensor(ep, dtype=torch.int64)
        if self.wants("step_index"):
            item["step_index"] = torch.tensor(step, dtype=torch.int64)
        if self.wants("success"):
            item["success"] = torch.tensor(self._success[ep], dtype=torch.bool)
        if self.wants("label"):
            item["label"] = torch.tensor(LABEL_CODES[self.episode_labels[ep]], dtype=torch.int64)
        for cam in self.image_cameras:
            key = IMAGE_PREFIX + cam
            offsets = self._windows.get(key)
            if offsets is None:
                img, valid = self._image(ep, cam, step)
                item[key] = torch.from_numpy(img)
                item[f"{key}.valid"] = torch.tensor(valid, dtype=torch.bool)
            else:
                steps, pad = window(step, offsets, start, stop)
                shown = [self._image(ep, cam, int(s)) for s in steps]
                item[key] = torch.from_numpy(np.stack([img for img, _ in shown]))
                item[f"{key}.valid"] = torch.tensor([v for _, v in shown], dtype=torch.bool)
                item[f"{key}.pad"] = torch.from_numpy(pad)
        return item

    def frame_rows(self, camera: str) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """For a training cache of ``camera``: each step's frame row (-1: no frame), and for each
        row the first (episode, step) that shows it (each frame is in the cache once)."""
        rows = np.full(len(self), -1, dtype=np.int32)
        firsts: list[tuple[int, int]] = []
        seen: dict[tuple[int, int], int] = {}
        for ep, (start, stop) in enumerate(self._ranges):
            valid = self._valid[ep][camera]
            if not valid[start:stop].any():
                continue
            reader = self._reader(ep)
            for step in range(start, stop):
                frame = reader.frame_index(camera, step) if valid[step] else None
                if frame is None:
                    continue
                row = seen.setdefault((ep, frame), len(firsts))
                if row == len(firsts):
                    firsts.append((ep, step))
                rows[self._row(ep, step)] = row
        return rows, firsts

    def use_training_cache(self, root: Path, size: Size, *, progress: bool = False) -> None:
        """Read the images of :attr:`image_cameras` at ``size`` from the training cache under
        ``root``, building what is missing first (each frame decoded and resized once)."""
        for cam in self.image_cameras:
            path = cache_path(root, self.version, cam, size)
            if not is_built(path):
                rows, firsts = self.frame_rows(cam)

                def frame(ep: int, step: int, cam: str = cam) -> np.ndarray | None:
                    return self._frame(ep, cam, step)

                build(path, rows, firsts, frame, size, progress=progress)
                self.close()  # the parent process keeps no file open for the workers it forks
            self._train[cam] = FrameArray(path)
        self.image_size = size

    def close(self) -> None:
        """Close the files this process has open (they reopen on the next access)."""
        for r in self._readers:
            r.close()
        self._lru.clear()
        if self._decoders_pid == os.getpid():
            for decoder in self._decoders.values():
                decoder.close()
            self._decoders = {}
        if isinstance(self._blobs, HoldsFiles):
            self._blobs.close()


def _taken(values: np.ndarray, dtype: type[np.generic], steps: int | np.ndarray) -> np.ndarray:
    return np.array(values[steps], dtype=dtype)


def _pinned_videos(
    store: Store, manifest: Manifest, keys: Sequence[str] | None
) -> list[dict[str, tuple[str, VideoIndex]]]:
    """Per episode, the video blob and frame index of each camera the version pins a video for
    (only cameras whose images are asked for: the index is read from the catalog)."""
    out: list[dict[str, tuple[str, VideoIndex]]] = []
    for entry in manifest.episodes:
        pins: dict[str, tuple[str, VideoIndex]] = {}
        for camera, digest in entry.videos:
            if keys is not None and IMAGE_PREFIX + camera not in keys:
                continue
            from takeover.storage.video import VideoIndex

            text = store.catalog.video_index(entry.episode_id, camera, digest)
            pins[camera] = (digest, VideoIndex.from_json(text))
        out.append(pins)
    return out


def _indexed(files: Sequence[Path]) -> tuple[list[EpisodeHeader], list[Timeline]]:
    return [read_header(f) for f in files], [read_timeline(f) for f in files]


def default_stream_bound(root: Path) -> int:
    """Half the free space of the disk that holds ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    return max(1, shutil.disk_usage(root).free // 2)


def pull(
    tag: str,
    store: Store | Path | str | None = None,
    cache_dir: Path | str | None = None,
    verify: Verify = "stamp",
    *,
    catalog_url: str | None = None,
    blob_url: str | None = None,
    keys: Sequence[str] | None = None,
    deltas: Deltas | None = None,
    image_size: Size | None = None,
    stream: bool = False,
    cache_max_bytes: int | None = None,
    progress: bool = False,
) -> EpisodeDataset:
    """Resolve ``tag``, make its blobs readable locally, and return a Dataset over the version.

    ``store`` is an open :class:`Store`, the path of one, or None for the default store;
    ``catalog_url`` / ``blob_url`` name its catalog database and blob store when they are not the
    store folder's own (as in the configuration); ``cache_dir`` defaults to
    :func:`default_cache_root`.

    By default the episode files and the frame blobs of the cameras ``keys`` asks for (all, without
    ``keys``; none for a state-only pull) are copied into the cache, each hashed on entry;
    ``verify="stamp"`` hashes a cached blob again only if its file changed since, ``"full"`` hashes
    every one again (see :mod:`takeover.storage.cache`). ``stream=True`` copies nothing up front:
    blobs are fetched on first access into ``<cache_dir>/stream``, bounded by ``cache_max_bytes``
    (default: half the free space there). ``image_size=(H, W)`` reads the images from a training
    cache at that size (built once, then shared by every pull of the version). ``keys`` and
    ``deltas``: see :class:`EpisodeDataset`; the derived keys of a version that pins training
    labels are read from their blobs, fetched verified into the cache (streaming too).
    ``progress`` shows bars on a terminal.
    """
    own = not isinstance(store, Store)
    st = (
        store
        if isinstance(store, Store)
        else Store.open(Path(store) if store else default_store_root(), catalog_url, blob_url=blob_url)
    )
    root = Path(cache_dir) if cache_dir else default_cache_root()
    stats = FetchStats()
    try:
        version = st.resolve(tag)
        entries = version.manifest.episodes
        digests = [e.digest for e in entries]
        streamed: BoundedBlobCache | None = None
        cache = LocalBlobStore(root)
        wanted_derived = derived_wanted(tag, entries, keys)  # before any big fetch: it may refuse
        derived = (
            DerivedSteps.fetch(tag, entries, wanted_derived, st.derived_blobs, cache, verify, stats)
            if wanted_derived
            else None
        )
        opened: OpenBlobs | None = None
        if stream:
            bound = cache_max_bytes if cache_max_bytes is not None else default_stream_bound(root)
            streamed = BoundedBlobCache(st.blobs, root / "stream", bound)
            files, headers, timelines = [], [], []
            for d in digests:  # each read at once: a small bound may evict it again later
                files.append(streamed.path(d))
                headers.append(read_header(files[-1]))
                timelines.append(read_timeline(files[-1]))
        else:
            files = fetch_verified(
                st.blobs, cache, digests, verify, progress=progress, stats=stats, what="episode files"
            )
            headers, timelines = _indexed(files)
            opened = OpenBlobs(cache)
        for entry, header in zip(entries, headers, strict=True):
            if header.meta.episode_id != entry.episode_id or header.num_steps != entry.num_steps:
                raise StorageError(
                    f"version {version.digest[:12]}: blob {entry.digest[:12]} does not hold episode "
                    f"{entry.episode_id} with {entry.num_steps} steps"
                )
        ds = EpisodeDataset(
            files,
            headers,
            version.digest,
            version.manifest,
            blobs=streamed or opened,
            keys=keys,
            deltas=deltas,
            timelines=timelines,
            streamed=streamed,
            videos=_pinned_videos(st, version.manifest, keys),
            derived=derived,
        )
        cams = ds.image_cameras
        sized = image_size is not None and all(
            is_built(cache_path(root, ds.version, c, image_size)) for c in cams
        )
        if cams and streamed is None and not sized:
            # Each camera's frames come from its pinned video if there is one, else its JPEG blob.
            wanted: set[str] = set()
            for entry, header in zip(entries, headers, strict=True):
                videos = dict(entry.videos)
                for c in cams:
                    if c in videos:
                        wanted.add(videos[c])
                    elif c in header.camera_blobs:
                        wanted.add(header.camera_blobs[c])
            needed = sorted(wanted)
            fetch_verified(
                st.blobs, cache, needed, verify, progress=progress, stats=stats, what="camera frames"
            )
        if image_size is not None:
            ds.use_training_cache(root, image_size, progress=progress)
    finally:
        if own:
            st.close()
    ds.fetched = stats
    return ds
