"""Camera streams as video: encode a stream's frames to an MP4 blob, and read frame ``i`` back.

JPEG at quality 90 costs about 26.7 GB per hour for three 640x480 cameras at 30 fps; H.264 or AV1
with a short keyframe interval costs a fraction of that and keeps random access. Encoding and
decoding go through PyAV (FFmpeg). The codecs this installation has are found at run time
(:func:`available_codecs`); asking for one it lacks is a :class:`VideoCodecError` naming those
it has.

A video keeps the stream's frames one for one, in order, without B-frame reordering: frame ``i``
of the video is frame ``i`` of the recorded JPEG stream. Its :class:`VideoIndex` says, per frame,
where its packet lies in the MP4 file (byte position and size), whether it is a keyframe, its
presentation time, and the capture time and step index the episode recorded for it; plus the
decoder's setup bytes (``extradata``). :class:`VideoFrames` uses it to read frame ``i`` as one
ranged read of the packets from the keyframe at or before ``i``, decoded forward; the decoder is
kept between calls, so reading on from the last frame decodes only the new packets.

The MP4 file itself is an ordinary video any player opens.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, cast, overload

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from takeover.storage.blobs import BlobReader
from takeover.storage.errors import StorageError
from takeover.storage.jpeg import decode_rgb as decode_jpeg_rgb
from takeover.storage.manifest import canonical_json


class VideoCodecError(StorageError):
    """A codec this installation cannot encode or decode (the message names those it can)."""


class VideoError(StorageError):
    """A video blob or index that does not read as the stream it claims to be."""


@dataclass(frozen=True)
class Codec:
    name: str
    encoders: tuple[str, ...]
    """FFmpeg encoders, preferred first."""
    decoders: tuple[str, ...]
    default_crf: int
    max_crf: int
    presets: tuple[str, ...]
    """The encoder's speed presets, fastest first."""
    default_preset: str


_X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)
CODECS = {
    "h264": Codec("h264", ("libx264",), ("h264",), 23, 51, _X264_PRESETS, default_preset="veryfast"),
    "av1": Codec(
        "av1",
        ("libsvtav1",),
        ("libdav1d", "libaom-av1", "av1"),
        35,
        63,
        tuple(map(str, range(13, -1, -1))),
        "8",
    ),
}
"""The codecs a stream may be transcoded to, by the name the CLI and the catalog use."""


def _has(name: str, mode: Literal["r", "w"]) -> bool:
    try:
        av.codec.Codec(name, mode)
    except (av.codec.codec.UnknownCodecError, ValueError):
        return False
    return True


def _first(names: Sequence[str], mode: Literal["r", "w"]) -> str | None:
    return next((n for n in names if _has(n, mode)), None)


@functools.cache
def available_codecs() -> dict[str, tuple[str, str]]:
    """Codec name -> (encoder, decoder) for each codec of :data:`CODECS` this PyAV can do both ways."""
    out = {}
    for name, codec in CODECS.items():
        enc, dec = _first(codec.encoders, "w"), _first(codec.decoders, "r")
        if enc is not None and dec is not None:
            out[name] = (enc, dec)
    return out


def require_codec(name: str) -> tuple[str, str]:
    """(encoder, decoder) of codec ``name``, or :class:`VideoCodecError` naming the codecs there are."""
    return _codec(name)[1:]


def _codec(name: str) -> tuple[Codec, str, str]:
    have = available_codecs()
    if name not in have:
        known = ", ".join(sorted(have)) or "none"
        what = "unknown codec" if name not in CODECS else "codec not available in this PyAV build"
        raise VideoCodecError(f"{what} {name!r}: this installation can transcode to {known}")
    return CODECS[name], *have[name]


@dataclass(frozen=True)
class VideoParams:
    """How a stream is encoded. Part of what identifies a transcoded stream in the catalog."""

    codec: str = "h264"
    gop: int = 10
    """Frames from one keyframe to the next: a random read decodes at most this many frames."""
    crf: int | None = None
    """Quality (lower is better and bigger); None: the codec's default."""
    preset: str = ""
    """Encoder speed preset; '' for the codec's default."""

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            _codec(self.codec)  # raises, naming the codecs there are
        if not 1 <= self.gop <= 600:
            raise ValueError(f"a keyframe interval (gop) is 1..600 frames, got {self.gop}")
        top = CODECS[self.codec].max_crf
        if self.crf is not None and not 0 <= self.crf <= top:
            raise ValueError(f"crf for {self.codec} is 0..{top}, got {self.crf}")
        presets = CODECS[self.codec].presets
        if self.preset and self.preset not in presets:
            raise ValueError(f"unknown {self.codec} preset {self.preset!r}: choose from {', '.join(presets)}")

    def resolved(self) -> VideoParams:
        """The same parameters with the codec's defaults filled in (what is recorded)."""
        c = CODECS[self.codec]
        crf = c.default_crf if self.crf is None else self.crf
        return VideoParams(self.codec, self.gop, crf, self.preset or c.default_preset)

    def to_json(self) -> str:
        """Canonical JSON of the resolved parameters (equal parameters, equal text)."""
        r = self.resolved()
        return canonical_json({"codec": r.codec, "gop": r.gop, "crf": r.crf, "preset": r.preset})

    @classmethod
    def from_json(cls, text: str) -> VideoParams:
        d = json.loads(text)
        return cls(str(d["codec"]), int(d["gop"]), int(d["crf"]), str(d["preset"]))


@dataclass(frozen=True)
class VideoIndex:
    """Where each frame of a video blob is, and which recorded frame it is (see the module doc)."""

    codec: str
    width: int
    height: int
    extradata: bytes
    pts: np.ndarray
    """Presentation time of each frame in the video's time base (int64, increasing)."""
    pos: np.ndarray
    """Byte position of each frame's packet in the blob (int64)."""
    size: np.ndarray
    """Byte size of each frame's packet (int64)."""
    key: np.ndarray
    """True where the frame is a keyframe (bool); frame 0 always is."""
    timestamps: np.ndarray
    """The recorded capture time of each frame (float64), as the episode file has it."""
    step_index: np.ndarray
    """The recorded step of each frame (int64), as the episode file has it."""
    _key_at_or_before: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.pts)
        if not all(len(a) == n for a in (self.pos, self.size, self.key, self.timestamps, self.step_index)):
            raise VideoError("a video index whose per-frame columns differ in length")
        if n and not bool(self.key[0]):
            raise VideoError("a video index whose first frame is not a keyframe")
        where = np.where(self.key, np.arange(n), 0)
        object.__setattr__(self, "_key_at_or_before", np.maximum.accumulate(where) if n else where)

    def __len__(self) -> int:
        return len(self.pts)

    def keyframe_for(self, i: int) -> int:
        """The keyframe at or before frame ``i``."""
        return int(self._key_at_or_before[i])

    def to_json(self) -> str:
        return canonical_json(
            {
                "codec": self.codec,
                "width": self.width,
                "height": self.height,
                "extradata": base64.b64encode(self.extradata).decode("ascii"),
                "pts": self.pts.tolist(),
                "pos": self.pos.tolist(),
                "size": self.size.tolist(),
                "key": [int(k) for k in self.key],
                "timestamps": self.timestamps.tolist(),
                "step_index": self.step_index.tolist(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> VideoIndex:
        d = json.loads(text)
        return cls(
            codec=str(d["codec"]),
            width=int(d["width"]),
            height=int(d["height"]),
            extradata=base64.b64decode(d["extradata"]),
            pts=np.asarray(d["pts"], dtype=np.int64),
            pos=np.asarray(d["pos"], dtype=np.int64),
            size=np.asarray(d["size"], dtype=np.int64),
            key=np.asarray(d["key"], dtype=bool),
            timestamps=np.asarray(d["timestamps"], dtype=np.float64),
            step_index=np.asarray(d["step_index"], dtype=np.int64),
        )


def _frame_rate(timestamps: np.ndarray) -> Fraction:
    """The stream's nominal rate (whole frames per second) for players; the index keeps real times."""
    if len(timestamps) < 2:
        return Fraction(30)
    dt = float(np.median(np.diff(timestamps)))
    return Fraction(max(1, min(240, round(1.0 / dt)))) if dt > 0 else Fraction(30)


def _quiet_encoder_logs() -> None:
    # SVT-AV1 prints its configuration on stderr at every encoder start unless told otherwise.
    os.environ.setdefault("SVT_LOG", "1")


def check_encoder(params: VideoParams) -> None:
    """Encode one small frame with ``params``, so that an encoder that fails at all fails once,
    before any work, rather than once per stream (:class:`VideoError`)."""
    jpeg = cv2.imencode(".jpg", np.zeros((64, 64, 3), dtype=np.uint8))[1].tobytes()
    with tempfile.TemporaryDirectory(prefix="takeover-video-") as tmp:
        encode_video([jpeg], np.zeros(1), np.zeros(1, dtype=np.int64), (64, 64), params, Path(tmp) / "x.mp4")


class StreamEncoder:
    """Frames (RGB, H x W x 3 uint8) into one video stream of an open MP4 ``container``, one frame
    per call, in order, without B-frame reordering; presentation time ``k / rate`` for the k-th
    frame. An odd size is encoded padded by one row or column with the edge (4:2:0 video needs
    even sizes): :attr:`encoded_size` says what a reader decodes."""

    def __init__(
        self,
        container: av.container.OutputContainer,
        params: VideoParams,
        rate: Fraction | int,
        size: tuple[int, int],
    ) -> None:
        _, encoder, _ = _codec(params.codec)
        p = params.resolved()
        self.size = size
        self.encoded_size = (size[0] + size[0] % 2, size[1] + size[1] % 2)
        options = {"crf": str(p.crf), "preset": p.preset}
        if encoder == "libx264":
            options["bf"] = "0"  # no reordering: packet i is frame i
        if encoder == "libsvtav1":
            _quiet_encoder_logs()
        self.encoder = encoder
        self._container = container
        stream = cast(av.VideoStream, container.add_stream(encoder, rate=rate, options=options))
        stream.height, stream.width = self.encoded_size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = p.gop
        stream.codec_context.max_b_frames = 0
        self._stream = stream
        self.frames = 0
        self.bytes = 0
        """Bytes of the packets muxed so far (the file's size, less the container's own)."""

    def add(self, rgb: np.ndarray) -> None:
        if rgb.shape[:2] != self.size:
            h, w = rgb.shape[:2]
            raise VideoError(f"frame {self.frames} is {w}x{h}, the stream {self.size[1]}x{self.size[0]}")
        if self.encoded_size != self.size:
            (height, width), (ph, pw) = self.size, self.encoded_size
            rgb = np.pad(rgb, ((0, ph - height), (0, pw - width), (0, 0)), mode="edge")
        vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        vf.pts = self.frames
        self._mux(self._stream.encode(vf))
        self.frames += 1

    def flush(self) -> None:
        """Encode what the encoder still holds (call once, after the last frame)."""
        self._mux(self._stream.encode(None))

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            self.bytes += packet.size
        self._container.mux(packets)


def encode_video(
    frames: Iterable[bytes],
    timestamps: np.ndarray,
    step_index: np.ndarray,
    size: tuple[int, int],
    params: VideoParams,
    out: Path,
    between_frames: Callable[[], None] = lambda: None,
) -> VideoIndex:
    """Encode the JPEG ``frames`` of one camera (``size``: height, width) into a new MP4 at ``out``
    and return its index. ``between_frames`` is called before each frame (to pause). An odd size
    is encoded padded by one row or column (4:2:0 video needs even sizes); reading crops it off."""
    if len(timestamps) == 0:
        raise VideoError("a camera stream without frames has nothing to transcode")
    encoder = _codec(params.codec)[1]
    count = 0
    try:
        with av.open(str(out), "w", format="mp4") as container:
            stream = StreamEncoder(container, params, _frame_rate(timestamps), size)
            for jpeg in frames:
                between_frames()
                stream.add(decode_jpeg_rgb(jpeg))
                count += 1
            stream.flush()
    except av.FFmpegError as exc:
        raise VideoError(f"{encoder} failed at frame {count}: {str(exc).splitlines()[0][:160]}") from None
    if count != len(timestamps) or count != len(step_index):
        raise VideoError(f"the stream has {count} frames but {len(timestamps)} timestamps")
    return read_index(out, params.resolved().codec, timestamps, step_index, size)


def read_index(
    path: Path, codec: str, timestamps: np.ndarray, step_index: np.ndarray, size: tuple[int, int]
) -> VideoIndex:
    """The index of the MP4 at ``path`` (its packets, demuxed without decoding), with the recorded
    times, steps and size (height, width) of its frames."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        extradata = bytes(stream.codec_context.extradata or b"")
        rows = [
            (int(pk.pts), int(pk.pos), int(pk.size), bool(pk.is_keyframe))
            for pk in container.demux(stream)
            if pk.size and pk.pts is not None and pk.pos is not None
        ]
    if len(rows) != len(timestamps):
        raise VideoError(f"the video has {len(rows)} frames, the stream {len(timestamps)}")
    cols = list(zip(*rows, strict=True))
    pts = np.asarray(cols[0], dtype=np.int64)
    if len(pts) > 1 and not bool(np.all(np.diff(pts) > 0)):
        raise VideoError("the video's frames are reordered; it cannot stand for the stream frame by frame")
    return VideoIndex(
        codec=codec,
        width=size[1],
        height=size[0],
        extradata=extradata,
        pts=pts,
        pos=np.asarray(cols[1], dtype=np.int64),
        size=np.asarray(cols[2], dtype=np.int64),
        key=np.asarray(cols[3], dtype=bool),
        timestamps=np.asarray(timestamps, dtype=np.float64),
        step_index=np.asarray(step_index, dtype=np.int64),
    )


class VideoFrames(Sequence[np.ndarray]):
    """Random access to the frames of video blob ``digest``: ``frames[i]`` is uint8 (H, W, 3) RGB.

    Nothing is read or opened in ``__init__``. Frame ``i`` is decoded from the keyframe at or
    before it; the decoder stays open, so reading frames in order decodes each packet once. Bytes
    come from ``blobs`` by range, a keyframe interval at a time. Not thread-safe; each DataLoader
    worker makes its own decoder (the state is dropped when pickled).
    """

    def __init__(self, blobs: BlobReader, digest: str, frame_index: VideoIndex) -> None:
        self.blobs = blobs
        self.digest = digest
        self.frame_index = frame_index
        self._reset()

    def _reset(self) -> None:
        self._ctx: Any = None
        self._fed = 0
        """The next packet to give the decoder."""
        self._last = -1
        """The last frame returned (the decoder has consumed every packet up to it)."""
        self._decoded: dict[int, np.ndarray] = {}
        self._buf_start, self._buf = 0, b""
        self._rgb = VideoReformatter()  # one converter for every frame: made once, not per frame

    def __getstate__(self) -> dict[str, Any]:
        return {"blobs": self.blobs, "digest": self.digest, "frame_index": self.frame_index}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["blobs"], state["digest"], state["frame_index"])  # type: ignore[misc]

    def __len__(self) -> int:
        return len(self.frame_index)

    @overload
    def __getitem__(self, i: int) -> np.ndarray: ...
    @overload
    def __getitem__(self, i: slice) -> list[np.ndarray]: ...
    def __getitem__(self, i: int | slice) -> np.ndarray | list[np.ndarray]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"frame {i} of a video of {n} frames")
        return self._frame(i % n)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]

    def close(self) -> None:
        self._reset()

    def __enter__(self) -> VideoFrames:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _frame(self, i: int) -> np.ndarray:
        key = self.frame_index.keyframe_for(i)
        if self._ctx is None or not (self._last < i and key < self._fed):
            self._restart(key)
        pts = int(self.frame_index.pts[i])
        while pts not in self._decoded:
            if self._fed >= len(self):
                self._drain()
                if pts not in self._decoded:
                    raise VideoError(f"video blob {self.digest[:12]} does not decode to frame {i}")
                break
            self._feed(self._fed, i)
        frame = self._decoded.pop(pts)
        self._last = i
        self._decoded = {k: v for k, v in self._decoded.items() if k > pts}
        return frame

    def _restart(self, key: int) -> None:
        _, _, decoder = _codec(self.frame_index.codec)
        ctx = av.CodecContext.create(decoder, "r")
        if self.frame_index.extradata:
            ctx.extradata = self.frame_index.extradata
        ctx.thread_count = 1  # one frame in, one frame out: no frame-threading delay
        self._ctx, self._fed, self._last, self._decoded = ctx, key, -1, {}

    def _packet_bytes(self, j: int, target: int) -> bytes:
        pos, size = int(self.frame_index.pos[j]), int(self.frame_index.size[j])
        if not (self._buf_start <= pos and pos + size <= self._buf_start + len(self._buf)):
            # Read the packets up to the end of the target's keyframe interval in one go.
            last = target
            while last + 1 < len(self) and not self.frame_index.key[last + 1]:
                last += 1
            lo = int(self.frame_index.pos[j : last + 1].min())
            hi = int((self.frame_index.pos[j : last + 1] + self.frame_index.size[j : last + 1]).max())
            self._buf_start, self._buf = lo, self.blobs.read_range(self.digest, lo, hi - lo)
            if len(self._buf) != hi - lo:
                raise VideoError(f"video blob {self.digest[:12]} is shorter than its index says")
        start = pos - self._buf_start
        return self._buf[start : start + size]

    def _feed(self, j: int, target: int) -> None:
        packet = av.Packet(self._packet_bytes(j, target))
        packet.pts = packet.dts = int(self.frame_index.pts[j])
        self._fed = j + 1
        self._decode(packet, int(self.frame_index.pts[target]))

    def _drain(self) -> None:
        self._decode(None, -1)
        self._ctx = None

    def _decode(self, packet: av.Packet | None, at_least: int) -> None:
        try:
            frames = self._ctx.decode(packet)
        except av.FFmpegError as exc:
            self._ctx = None
            raise VideoError(
                f"video blob {self.digest[:12]} does not decode: {str(exc).splitlines()[0][:160]}"
            ) from None
        self._collect(frames, at_least)

    def _collect(self, frames: Iterable[Any], at_least: int) -> None:
        for f in frames:
            if f.pts is not None and f.pts >= at_least:
                # One thread: a scaler with a thread pool cannot be freed in a forked child (a hang).
                rgb = self._rgb.reformat(f, format="rgb24", threads=1).to_ndarray()
                h, w = self.frame_index.height, self.frame_index.width
                self._decoded[int(f.pts)] = rgb if rgb.shape[:2] == (h, w) else rgb[:h, :w].copy()
