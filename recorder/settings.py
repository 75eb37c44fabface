"""The recorder's settings (the ``[recorder]`` section of the configuration). Light to import."""

from __future__ import annotations

from dataclasses import dataclass

ENCODERS = ("process", "threads")


@dataclass(frozen=True)
class RecorderConfig:
    jpeg_quality: int = 90
    queue_frames: int = 64
    """Frames waiting for an encoder, all cameras together; beyond that frames are dropped (counted)."""
    encode_workers: int = 2
    """Encoder threads, for ``encoder = "threads"``."""
    encoder: str = "process"
    """'process': JPEG encoding in a child process (frames through shared memory), so it never
    contends with the control loop for the interpreter lock; 'threads': encoder threads here."""
    sync_interval_s: float = 0.25
    """The write-ahead log is made durable at least this often."""
    disk_margin: float = 1.5
    """An attempt starts only when the disk has this many times its estimated size free (0: no check)."""

    def __post_init__(self) -> None:
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if self.queue_frames < 1:
            raise ValueError("queue_frames must be at least 1")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, got {self.encoder!r}")
        if self.encode_workers < 1:
            raise ValueError("encode_workers must be at least 1")
        if not 0 < self.sync_interval_s <= 1.0:
            raise ValueError(f"sync_interval_s must be in (0, 1], got {self.sync_interval_s}")
        if not 0 <= self.disk_margin <= 100:
            raise ValueError(f"disk_margin must be in 0..100 (0: no check), got {self.disk_margin}")
