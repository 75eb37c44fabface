"""Transcoded camera streams in the catalog: which episode's camera, encoded how, in which blob.

One row per (episode, camera, encoding parameters), written once in one transaction after its
blob is stored, so a row always names a whole blob (an interruption leaves at worst an orphan
blob). The frame index is read only where a stream is read (:func:`index_of`), never by listing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from takeover.storage.errors import StorageError, listing
from takeover.storage.manifest import ManifestEntry
from takeover.storage.tables import EpisodeRow, EpisodeVideoRow


@dataclass(frozen=True)
class VideoRecord:
    """A transcoded camera stream (without its frame index)."""

    episode_id: str
    camera: str
    codec: str
    params: str
    """Canonical JSON of the encoding parameters."""
    digest: str
    """sha256 of the video blob."""
    created_at: float


_LISTED = (
    EpisodeVideoRow.episode_id,
    EpisodeVideoRow.camera,
    EpisodeVideoRow.codec,
    EpisodeVideoRow.params,
    EpisodeVideoRow.digest,
    EpisodeVideoRow.created_at,
)


def add(s: Session, rec: VideoRecord, frame_index: str) -> bool:
    """Record a transcoded stream; False (and nothing written) if one with these parameters is there."""
    if s.get(EpisodeRow, rec.episode_id) is None:
        raise StorageError(f"cannot record a video of episode {rec.episode_id!r}: it is not in the catalog")
    if s.get(EpisodeVideoRow, (rec.episode_id, rec.camera, rec.params)) is not None:
        return False
    s.add(
        EpisodeVideoRow(
            episode_id=rec.episode_id,
            camera=rec.camera,
            params=rec.params,
            codec=rec.codec,
            digest=rec.digest,
            frame_index=frame_index,
            created_at=rec.created_at,
        )
    )
    s.flush()
    return True


def of(s: Session, episode_ids: Sequence[str] | None) -> dict[str, list[VideoRecord]]:
    """Episode id -> its transcoded streams, by camera then oldest first (the given episodes, or all)."""
    q = select(*_LISTED).order_by(
        EpisodeVideoRow.episode_id, EpisodeVideoRow.camera, EpisodeVideoRow.created_at, EpisodeVideoRow.params
    )
    if episode_ids is not None:
        q = q.where(EpisodeVideoRow.episode_id.in_(list(episode_ids)))
    out: dict[str, list[VideoRecord]] = {}
    for row in s.execute(q):
        out.setdefault(row.episode_id, []).append(VideoRecord(*row))
    return out


def index_of(s: Session, episode_id: str, camera: str, digest: str) -> str:
    """The frame index (JSON) of the stream ``camera`` of ``episode_id`` stored as blob ``digest``."""
    q = select(EpisodeVideoRow.frame_index).where(
        EpisodeVideoRow.episode_id == episode_id,
        EpisodeVideoRow.camera == camera,
        EpisodeVideoRow.digest == digest,
    )
    text = s.scalars(q).first()
    if text is None:
        raise StorageError(
            f"no video {digest[:12]} of camera {camera!r} of episode {episode_id!r} in the catalog"
        )
    return text


def pin_videos(
    tag: str,
    entries: Sequence[ManifestEntry],
    videos: dict[str, list[VideoRecord]],
    cameras: Sequence[str] | None = None,
) -> list[ManifestEntry]:
    """``entries`` with their transcoded streams pinned (the newest of each camera), for every camera
    in ``cameras`` (None: every camera any of them has a video of). Raises :class:`StorageError`
    naming the streams not transcoded, so that a version pins a video for every camera asked."""
    asked = (
        sorted(set(cameras))
        if cameras is not None
        else sorted({v.camera for vs in videos.values() for v in vs})
    )
    if not asked:
        raise StorageError(
            f"cannot commit {tag!r} with videos: no episode of the selection has a transcoded camera "
            "stream (run `takeover data transcode` first)"
        )
    out, missing = [], []
    for entry in entries:
        newest = {v.camera: v.digest for v in videos.get(entry.episode_id, ())}  # oldest first: last wins
        missing += [f"{entry.episode_id}/{c}" for c in asked if c not in newest]
        out.append(replace(entry, videos=tuple((c, newest[c]) for c in asked if c in newest)))
    if missing:
        raise StorageError(
            f"cannot commit {tag!r} with videos: {len(missing)} stream(s) not transcoded: {listing(missing)} "
            "(run `takeover data transcode`, or name the cameras to pin)"
        )
    return out
