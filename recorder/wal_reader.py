"""Read a write-ahead log directory back and build the episode it holds.

The same code finalizes a finished attempt (with the camera indexes the writer kept) and
recovers one a crash left behind (scanning the camera logs, cutting torn tails).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from takeover.recorder.wal import CAMERA_PREFIX, STEPS_LOG, CameraIndex, WalContents
from takeover.storage.blobs import LocalFile, sha256_file
from takeover.storage.codec import unpack_log
from takeover.storage.record_log import (
    FRAME_HEAD,
    KIND_DROPPED,
    KIND_END,
    KIND_EVENT,
    KIND_FRAME,
    KIND_MISSED,
    KIND_SAMPLE,
    KIND_START,
    KIND_STEP,
    iter_records,
    scan,
    truncate_to,
)
from takeover.storage.schema import (
    CAMERA_KINDS,
    AttemptInfo,
    CameraStream,
    Episode,
    EpisodeMeta,
    Event,
    EventKind,
    FrameBlob,
    TimedStream,
)

PERIOD_ERROR_STREAM = "loop_period_error"
STATION_CLOCK = "station_clock."
"""Prefix of the streams of a station with a clock of its own (docs/recorder.md, "One clock")."""
STATION_IMAGE_TIME = f"{STATION_CLOCK}image_time."
"""Per station camera: each image's capture time on the station's clock, at its rebased time."""


def read_wal(directory: Path) -> WalContents:
    """Everything durable in ``directory``; camera logs are scanned and torn tails cut off, so each
    log is a valid frame blob."""
    out = WalContents()
    steps_path = directory / STEPS_LOG
    if not steps_path.is_file():
        return out
    result = scan(steps_path)
    if result.torn:
        out.torn.append(STEPS_LOG)
    for rec in result.records:
        p = unpack_log(rec.payload)
        if rec.kind == KIND_START:
            out.start = p
        elif rec.kind == KIND_STEP:
            out.steps.append(p)
        elif rec.kind == KIND_EVENT:
            out.events.append(Event(EventKind(p["kind"]), int(p["step"]), float(p["t"]), p["reason"]))
        elif rec.kind == KIND_SAMPLE:
            ts, vs = out.samples.setdefault(p["n"], ([], []))
            ts.append(float(p["t"]))
            vs.append(p["v"])
        elif rec.kind == KIND_DROPPED:
            out.dropped = {str(k): int(v) for k, v in p.items()}
        elif rec.kind == KIND_MISSED:
            out.missed = {str(k): int(v) for k, v in p.items()}
        elif rec.kind == KIND_END:
            out.end = p
    for path in sorted(directory.glob(f"{CAMERA_PREFIX}*.log")):
        idx, torn = scan_camera_log(path)
        if torn:
            out.torn.append(path.name)
        out.cameras[path.name[len(CAMERA_PREFIX) : -len(".log")]] = idx
    return out


def scan_camera_log(path: Path) -> tuple[CameraIndex, bool]:
    """Index the intact frames of a camera log, cut off a torn tail, and hash what remains."""
    size = path.stat().st_size
    idx = CameraIndex(path)
    end = 0
    with open(path, "rb") as f:
        for rec, after in iter_records(f, size):
            end = after
            if rec.kind != KIND_FRAME or len(rec.payload) < FRAME_HEAD.size:
                continue
            t, step, h, w = FRAME_HEAD.unpack_from(rec.payload)
            idx.offsets.append(rec.offset + FRAME_HEAD.size)
            idx.lengths.append(len(rec.payload) - FRAME_HEAD.size)
            idx.times.append(t)
            idx.steps.append(step)
            idx.height, idx.width = h, w
    torn = end != size
    if torn and end > 0:
        path.chmod(0o644)
        truncate_to(path, end)
    idx.digest = sha256_file(path) if end > 0 else ""
    return idx, torn


def build_episode(c: WalContents, episode_id: str, *, recovered: bool) -> Episode | None:
    """The episode a log holds (None if it holds no step)."""
    if c.start is None or not c.steps:
        return None
    start, end = c.start, c.end or {}
    steps = c.steps
    n = len(steps)
    t = np.asarray([s["t"] for s in steps], dtype=np.float64)
    events = [e for e in (place_event(e, t) for e in c.events) if e.step <= n]
    info = AttemptInfo(**{name: start[name] for name in AttemptInfo.field_names() if name in start})
    extra: dict[str, Any] = {**start.get("extra", {}), "timing": end.get("timing", {})}
    extra["dropped_frames"] = {name: int(c.dropped.get(name, 0)) for name in sorted(c.cameras)}
    if c.missed:
        extra["missed_frames"] = {name: int(v) for name, v in sorted(c.missed.items())}
    rate = float(info.rate_hz)
    extra["late_steps"] = int(np.count_nonzero(np.diff(t) > 1.5 / rate)) if n > 1 and rate > 0 else 0
    ended_at = end.get("ended_at")
    end_reason = str(end.get("end_reason", ""))
    if recovered:
        end_reason = "interrupted"
        cut = c.last_t
        extra.update(recovered=True, cut_at=c.wall_time(cut), cut_at_monotonic=cut)
        events.append(Event(EventKind.END, n, cut, "cut: recording interrupted, recovered"))
        ended_at = c.wall_time(cut)
    meta = EpisodeMeta(
        **{**info.info_fields(), "episode_id": episode_id},
        ended_at=float(ended_at if ended_at is not None else c.wall_time(c.last_t)),
        success=end["success"] if "success" in end else bool(steps[-1]["ok"]),
        outcome=str(end.get("outcome", "")),
        end_reason=end_reason,
        note=str(end.get("note", "")),
        extra=extra,
    )
    streams: dict[str, TimedStream] = {}
    pe = [s.get("pe") for s in steps]
    if any(v is not None for v in pe):
        vals = np.asarray([math.nan if v is None else float(v) for v in pe], dtype=np.float64)
        streams[PERIOD_ERROR_STREAM] = TimedStream(t.copy(), vals)
    for name, (ts, vs) in c.samples.items():
        streams[name] = TimedStream(np.asarray(ts, dtype=np.float64), np.stack(vs))
    clock = station_clock(steps, t)
    if clock is not None:
        extra["station_clock"], clock_streams = clock
        streams.update(clock_streams)
    ep = Episode(
        meta=meta,
        timestamps=t,
        state=np.stack([s["s"] for s in steps]).astype(np.float32),
        action=np.stack([s["a"] for s in steps]).astype(np.float32),
        proposed_action=np.stack([s["p"] for s in steps]).astype(np.float32),
        control_source=np.asarray([s["c"] for s in steps], dtype=np.uint8),
        events=events,
        cameras={
            name: _camera_stream(name, idx, t, int(c.dropped.get(name, 0)))
            for name, idx in sorted(c.cameras.items())
            if idx.offsets
        },
        streams=streams,
    )
    ep.validate()
    return ep


def station_clock(
    steps: list[dict[str, Any]], step_t: np.ndarray
) -> tuple[dict[str, Any], dict[str, TimedStream]] | None:
    """For steps rebased from a station's own clock: the last estimate (the episode's
    ``station_clock``) and the streams ``station_clock.time`` (the station's time of each step),
    ``.offset`` (station minus engine time, as applied) and ``.uncertainty`` (of the estimate).
    None when no step has a station time (a station on the engine's clock, or an older log)."""
    rows = [i for i, s in enumerate(steps) if "st" in s]
    if not rows:
        return None
    t = step_t[rows]
    raw = np.asarray([steps[i]["st"] for i in rows], dtype=np.float64)
    bound = np.asarray([steps[i]["ck"]["uncertainty_s"] for i in rows], dtype=np.float64)
    streams = {
        f"{STATION_CLOCK}time": TimedStream(t, raw),
        f"{STATION_CLOCK}offset": TimedStream(t.copy(), raw - t),
        f"{STATION_CLOCK}uncertainty": TimedStream(t.copy(), bound),
    }
    return dict(steps[rows[-1]]["ck"]), streams


def place_event(event: Event, step_t: np.ndarray) -> Event:
    """A camera event the recorder placed by time (step -1) gets the step its frames pair with:
    a camera that went down misses its frames from the first step observed after its next frame
    was due; one that came back has its first new frame at the last step observed before it."""
    if event.step >= 0 or event.kind not in CAMERA_KINDS:
        return event
    after = int(np.searchsorted(step_t, event.t, side="right"))
    step = after if event.kind is EventKind.CAMERA_DOWN else max(after - 1, 0)
    return Event(event.kind, step, event.t, event.reason)


def _camera_stream(name: str, idx: CameraIndex, step_t: np.ndarray, dropped: int) -> CameraStream:
    times = np.asarray(idx.times, dtype=np.float64)
    steps = np.asarray(idx.steps, dtype=np.int64)
    # Frames from free-running cameras (step -1) belong to the last step observed before capture.
    free = steps < 0
    if free.any():
        steps[free] = np.maximum(np.searchsorted(step_t, times[free], side="right") - 1, 0)
    order = np.lexsort((times, steps))
    blob = FrameBlob(
        LocalFile(idx.path),
        idx.digest,
        np.asarray(idx.offsets, dtype=np.int64)[order],
        np.asarray(idx.lengths, dtype=np.int64)[order],
    )
    return CameraStream(
        name=name,
        frames=blob,
        timestamps=times[order],
        step_index=steps[order],
        height=idx.height,
        width=idx.width,
        dropped=dropped,
    )
