"""Builders of realistic episodes for tests (here and in the packages that use storage).

Frames are real JPEGs: RGB arrays encoded with OpenCV after RGB->BGR, as the recorder does.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from takeover.storage.blobs import LocalFile
from takeover.storage.record_log import LogWriter
from takeover.storage.schema import (
    CameraStream,
    ControlSource,
    Episode,
    EpisodeMeta,
    Event,
    EventKind,
    FrameBlob,
)


def encode_rgb_jpeg(rgb: np.ndarray, quality: int = 95) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(buf.tobytes())


def solid_rgb(height: int, width: int, color: tuple[int, int, int]) -> np.ndarray:
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[:] = color
    return img


def frame_color(camera_index: int, frame_index: int) -> tuple[int, int, int]:
    """A distinct, JPEG-robust solid color per (camera, frame), so tests can tell frames apart."""
    return ((40 * frame_index + 20) % 256, (90 * camera_index + 30) % 256, (200 - 25 * frame_index) % 256)


def make_episode(
    episode_id: str,
    num_steps: int = 12,
    *,
    seed: int = 0,
    state_dim: int = 5,
    action_dim: int = 3,
    cameras: tuple[str, ...] = ("front",),
    frame_every: int = 3,
    first_frame_step: int = 0,
    image_size: tuple[int, int] = (8, 16),
    success: bool | None = True,
    outcome: str = "success",
    task: str = "pick the red cube",
    takeover_at: int | None = None,
    end_reason: str = "",
    note: str = "",
) -> Episode:
    """An episode with random streams, events, and one solid-color JPEG every ``frame_every`` steps."""
    rng = np.random.default_rng(seed)
    t0 = 1000.0 + seed
    rate = 10.0
    timestamps = t0 + np.arange(num_steps, dtype=np.float64) / rate
    source = np.full(num_steps, int(ControlSource.POLICY), dtype=np.uint8)
    events = [Event(EventKind.START, 0, t0)]
    if takeover_at is not None and num_steps > 0:
        k = min(takeover_at, num_steps - 1)
        source[k:] = int(ControlSource.HUMAN)
        events.append(Event(EventKind.TAKEOVER, k, t0 + k / rate, reason="gripper slipped"))
    events.append(Event(EventKind.END, num_steps, t0 + num_steps / rate))
    proposed = rng.standard_normal((num_steps, action_dim)).astype(np.float32)
    if num_steps:
        proposed[-1] = np.nan  # no proposal at the last step
    h, w = image_size
    streams: dict[str, CameraStream] = {}
    for ci, name in enumerate(cameras):
        steps = np.arange(first_frame_step, num_steps, frame_every, dtype=np.int64)
        frames = [encode_rgb_jpeg(solid_rgb(h, w, frame_color(ci, fi))) for fi in range(len(steps))]
        streams[name] = CameraStream(
            name=name,
            frames=frames,
            timestamps=t0 + steps.astype(np.float64) / rate + 0.004,
            step_index=steps,
            height=h,
            width=w,
            dropped=ci,
        )
    started = 1.7e9 + 60.0 * seed
    meta = EpisodeMeta(
        episode_id=episode_id,
        station="sim-0",
        robot="sawyer",
        task=task,
        operator="ada",
        policy_id="pi0-test",
        rate_hz=rate,
        started_at=started,
        ended_at=started + num_steps / rate,
        success=success,
        outcome=outcome,
        end_reason=end_reason,
        note=note,
        seed=seed,
    )
    return Episode(
        meta=meta,
        timestamps=timestamps,
        state=rng.standard_normal((num_steps, state_dim)).astype(np.float32),
        action=rng.standard_normal((num_steps, action_dim)).astype(np.float32),
        proposed_action=proposed,
        control_source=source,
        events=events,
        cameras=streams,
    )


def frames_in_a_log(ep: Episode, camera: str, log: Path) -> list[bytes]:
    """Move the frames of ``ep``'s ``camera`` into a camera log at ``log`` (as the recorder keeps
    them: a frame blob the store adopts); returns the frames."""
    cam = ep.cameras[camera]
    frames = list(cam.frames)
    w = LogWriter(log).open()
    offsets = [
        w.append_frame(float(t), int(s), cam.height, cam.width, f)
        for t, s, f in zip(cam.timestamps, cam.step_index, frames, strict=True)
    ]
    w.close()
    lengths = np.asarray([len(f) for f in frames], dtype=np.int64)
    cam.frames = FrameBlob(LocalFile(w.path), w.digest(), np.asarray(offsets, dtype=np.int64), lengths)
    return frames


def moving_scene(num_frames: int, height: int = 480, width: int = 640, seed: int = 0) -> list[np.ndarray]:
    """Natural-looking RGB frames with motion: a smooth lit background, a textured table the camera
    pans over slowly, and two colored objects moving across it (for video codecs, which do well or
    badly depending on texture and motion, and for telling frames apart)."""
    rng = np.random.default_rng(seed)
    pad = 64
    texture = cv2.GaussianBlur(
        rng.integers(0, 256, (height + pad, width + pad, 3)).astype(np.float32), (0, 0), 2.0
    )
    texture = (texture - texture.mean()) * 2.5
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    light = 90 + 60 * np.sin(xx / width * 2.2 + 0.4)[..., None] * np.cos(yy / height * 1.7)[..., None]
    base = np.array([150.0, 120.0, 95.0], dtype=np.float32)
    frames = []
    for i in range(num_frames):
        dx, dy = int(pad / 2 + 20 * np.sin(i / 40)), int(pad / 2 + 10 * np.cos(i / 55))
        img = base + light + texture[dy : dy + height, dx : dx + width]
        for k, color in enumerate(((200.0, 40.0, 40.0), (40.0, 80.0, 210.0))):
            cx = width * (0.2 + 0.6 * ((i * (3 + 2 * k) / 300 + 0.3 * k) % 1.0))
            cy = height * (0.45 + 0.25 * np.sin(i / (17 + 9 * k) + k))
            disc = ((xx - cx) ** 2 + (yy - cy) ** 2 < (height / 10) ** 2)[..., None]
            img = np.where(disc, np.asarray(color, dtype=np.float32) + 0.3 * light, img)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames
