"""Transcoding a store's camera streams to video: which streams are left, and doing one of them.

Each stream becomes a new blob (:mod:`takeover.storage.video`) and then one catalog row
(:mod:`takeover.storage.video_rows`); the recorded JPEG frames are never touched. The video is
written to a locked temporary file, stored whole (a blob store's uploads are atomic), and only
then recorded, so an interruption at any point leaves at worst an orphan blob or a stale
temporary file, never a row without its blob. Doing a stream again is a no-op, so a run that
stopped part-way is simply started again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from takeover.storage.episode_file import read_episode, read_timeline
from takeover.storage.errors import UnknownEpisodeError, listing
from takeover.storage.store import Store
from takeover.storage.tempfiles import locked_temp
from takeover.storage.video import VideoFrames, VideoIndex, VideoParams, encode_video
from takeover.storage.video_rows import VideoRecord


@dataclass(frozen=True)
class StreamRef:
    """One camera stream of one episode."""

    episode_id: str
    camera: str
    frames: int

    def __str__(self) -> str:
        return f"{self.episode_id}/{self.camera}"


def pending_streams(
    store: Store, params: VideoParams, episode_ids: Sequence[str] | None = None
) -> list[StreamRef]:
    """The camera streams of the given episodes (default: all) not yet transcoded with ``params``,
    in catalog order (a camera that gave no frames has nothing to transcode). Raises
    :class:`UnknownEpisodeError` naming episodes the store lacks."""
    if episode_ids is None:
        records = store.list_episodes()
    else:
        wanted = list(dict.fromkeys(episode_ids))
        records = store.list_episodes(episode_ids=wanted)
        missing = sorted(set(wanted) - {r.episode_id for r in records})
        if missing:
            raise UnknownEpisodeError(f"no such episodes in the store at {store.where}: {listing(missing)}")
    key = params.to_json()
    done = {
        (v.episode_id, v.camera)
        for videos in store.catalog.videos_of([r.episode_id for r in records]).values()
        for v in videos
        if v.params == key
    }
    out = []
    for rec in records:
        with store.open_blob(rec.blob_digest) as f:
            frame_steps = read_timeline(f).frame_steps
        for camera in sorted(frame_steps):
            if (rec.episode_id, camera) not in done and len(frame_steps[camera]):  # no frames: no video
                out.append(StreamRef(rec.episode_id, camera, len(frame_steps[camera])))
    return out


@dataclass(frozen=True)
class Transcoded:
    record: VideoRecord
    video_bytes: int
    jpeg_bytes: int
    """The size of the recorded JPEG frames of the stream."""
    recorded: bool
    """False when the stream had been recorded meanwhile (by another run)."""


def transcode_stream(
    store: Store,
    stream: StreamRef,
    params: VideoParams,
    between_frames: Callable[[], None] = lambda: None,
) -> Transcoded:
    """Encode one camera stream to a video blob and record it.

    ``between_frames`` is called before each frame (a caller pauses in it while an attempt is
    being recorded). If the stream was recorded meanwhile with these parameters, nothing is
    recorded again (the blob is the same or an orphan; both harmless)."""
    store.require_writable(f"transcode {stream}")
    episode = store.get_episode(stream.episode_id)
    with store.open_blob(episode.blob_digest) as f:
        cam = read_episode(f, store.blobs).cameras[stream.camera]
    tmp_dir = store.root / "tmp"
    tmp_dir.mkdir(exist_ok=True)
    jpeg_bytes = 0

    def frames() -> Iterator[bytes]:
        nonlocal jpeg_bytes
        for jpeg in cam.frames:
            jpeg_bytes += len(jpeg)
            yield jpeg

    with locked_temp(tmp_dir, prefix=".video-", suffix=".mp4") as (_, tmp):
        index = encode_video(
            frames(),
            cam.timestamps,
            cam.step_index,
            (cam.height, cam.width),
            params,
            tmp,
            between_frames,
        )
        video_bytes = tmp.stat().st_size
        digest = store.blobs.put_file(tmp)
    record = VideoRecord(
        episode_id=stream.episode_id,
        camera=stream.camera,
        codec=params.codec,
        params=params.to_json(),
        digest=digest,
        created_at=time.time(),
    )
    recorded = store.catalog.add_video(record, index.to_json())
    return Transcoded(record, video_bytes, jpeg_bytes, recorded)


def open_video(store: Store, record: VideoRecord) -> VideoFrames:
    """Random access to the frames of a transcoded stream (nothing is read until a frame is)."""
    text = store.catalog.video_index(record.episode_id, record.camera, record.digest)
    return VideoFrames(store.blobs, record.digest, VideoIndex.from_json(text))
