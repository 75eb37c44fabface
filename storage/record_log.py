"""Append-only record logs: the recorder's write-ahead logs, and the frame blobs they become.

File layout::

    MAGIC (8 bytes)  then records:  length u32 | kind u8 | crc32 u32 | payload (length bytes)

All integers little-endian; the CRC covers the kind byte and the payload. A reader stops at the
first record that is incomplete or fails its CRC (a torn tail after a crash): everything before
it is intact, nothing after it is trusted.

A camera frame record (:data:`KIND_FRAME`) has the payload ``t f64 | step i64 | height u16 |
width u16 | JPEG bytes``, so a finished camera log doubles as the episode's frame blob: the
episode file indexes each JPEG by byte offset and length inside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAGIC = b"TKLOG01\n"
HEADER = struct.Struct("<IBI")
FRAME_HEAD = struct.Struct("<dqHH")
MAX_RECORD = 1 << 28
"""Largest payload a reader accepts; a larger length field is treated as corruption."""

KIND_FRAME = 1
KIND_START = 2
KIND_STEP = 3
KIND_EVENT = 4
KIND_END = 5
KIND_SAMPLE = 6
# 7 was a camera record, never written: do not reuse it.
KIND_DROPPED = 8
KIND_MISSED = 9


def _crc(kind: int, payload: bytes | memoryview) -> int:
    return zlib.crc32(payload, zlib.crc32(bytes((kind,)))) & 0xFFFFFFFF


class LogWriter:
    """Appends records to a new log file, hashing every byte written (the file's sha256).

    Writes are buffered; :meth:`sync` makes everything written so far durable (``fdatasync``).
    Not thread-safe: one writer thread owns it.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._f: BinaryIO | None = None
        self._sha = hashlib.sha256()
        self.size = 0

    def open(self) -> LogWriter:
        self._f = open(self.path, "xb", buffering=1 << 20)  # noqa: SIM115 - closed in close()
        self._raw(MAGIC)
        return self

    def _raw(self, data: bytes | memoryview) -> None:
        assert self._f is not None, "LogWriter.open() first"
        self._f.write(data)
        self._sha.update(data)
        self.size += len(data)

    def append(self, kind: int, payload: bytes | memoryview, head: bytes = b"") -> int:
        """Append one record whose payload is ``head + payload``; returns the offset of ``payload``."""
        n = len(head) + len(payload)
        crc = zlib.crc32(payload, _crc(kind, head)) & 0xFFFFFFFF
        self._raw(HEADER.pack(n, kind, crc))
        if head:
            self._raw(head)
        offset = self.size
        self._raw(payload)
        return offset

    def append_frame(self, t: float, step: int, height: int, width: int, jpeg: bytes) -> int:
        """Append a camera frame; returns the byte offset of its JPEG in the file."""
        return self.append(KIND_FRAME, jpeg, FRAME_HEAD.pack(t, step, height, width))

    def sync(self) -> None:
        if self._f is None:
            return
        self._f.flush()
        os.fdatasync(self._f.fileno())

    def digest(self) -> str:
        """sha256 of the bytes written so far."""
        return self._sha.hexdigest()

    def close(self) -> None:
        """Sync and close; the file is closed even when the sync fails (a full disk), which raises."""
        if self._f is not None:
            f, self._f = self._f, None
            try:
                f.flush()
                os.fdatasync(f.fileno())
            except OSError:
                with contextlib.suppress(OSError):  # fails again the same way; closes the file
                    f.close()
                raise
            f.close()


@dataclass(frozen=True)
class Record:
    kind: int
    offset: int
    """Byte offset of the payload in the file."""
    payload: bytes


@dataclass(frozen=True)
class ScanResult:
    records: list[Record]
    valid_end: int
    """Byte offset just past the last intact record."""
    size: int

    @property
    def torn(self) -> bool:
        return self.valid_end != self.size


def iter_records(f: BinaryIO, size: int) -> Iterator[tuple[Record, int]]:
    """Intact records of an open log and the offset after each, stopping at the first bad one."""
    if f.read(len(MAGIC)) != MAGIC:
        return
    pos = len(MAGIC)
    while pos + HEADER.size <= size:
        head = f.read(HEADER.size)
        if len(head) < HEADER.size:
            return
        n, kind, crc = HEADER.unpack(head)
        if n > MAX_RECORD or pos + HEADER.size + n > size:
            return
        payload = f.read(n)
        if len(payload) < n or _crc(kind, payload) != crc:
            return
        pos += HEADER.size + n
        yield Record(kind, pos - n, payload), pos


def scan(path: Path | str) -> ScanResult:
    """Read every intact record of the log at ``path``."""
    p = Path(path)
    size = p.stat().st_size
    records: list[Record] = []
    end = len(MAGIC) if size >= len(MAGIC) else 0
    with open(p, "rb") as f:
        for rec, after in iter_records(f, size):
            records.append(rec)
            end = after
    return ScanResult(records, end, size)


def truncate_to(path: Path | str, size: int) -> None:
    """Cut a torn tail off a log (recovery), durably."""
    with open(path, "r+b") as f:
        f.truncate(size)
        f.flush()
        os.fdatasync(f.fileno())
