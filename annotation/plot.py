"""A before/after picture of one boundary, drawn with OpenCV (no plotting library needed).

Left column: the motion components of the executed action; right column: the end-effector
position; raw in blue, smoothed in orange (drawn at its shifted times), the removed pause shaded,
blended steps marked. Below: the camera frames just before and just after the boundary.
"""

from __future__ import annotations

import cv2
import numpy as np

from takeover.annotation.smoothed import SmoothedEpisode
from takeover.storage.schema import Episode

WHITE, BLACK, GRID = (255, 255, 255), (30, 30, 30), (225, 225, 225)
RAW, SMOOTH, PAUSE, MARK = (200, 110, 30), (20, 140, 245), (205, 225, 250), (20, 40, 200)
FONT = cv2.FONT_HERSHEY_SIMPLEX
AXIS_NAMES = ("x", "y", "z", "w")


def _text(
    img: np.ndarray, s: str, org: tuple[int, int], scale: float = 0.5, color=BLACK, thick: int = 1
) -> None:
    cv2.putText(img, s, org, FONT, scale, color, thick, cv2.LINE_AA)


def _panel(
    img: np.ndarray,
    box: tuple[int, int, int, int],
    title: str,
    span: tuple[float, float],
    raw: tuple[np.ndarray, np.ndarray],
    smooth: tuple[np.ndarray, np.ndarray],
    pause: tuple[float, float] | None,
    marks: tuple[np.ndarray, np.ndarray],
    others: tuple[float, ...] = (),
) -> None:
    x0, y0, w, h = box
    t_lo, t_hi = span
    values = np.concatenate([raw[1], smooth[1]])
    values = values[np.isfinite(values)]
    v_lo, v_hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    pad = max(1e-6, 0.08 * (v_hi - v_lo) or 0.05 * max(1.0, abs(v_hi)))
    v_lo, v_hi = v_lo - pad, v_hi + pad

    def px(t: np.ndarray, v: np.ndarray) -> np.ndarray:
        xs = x0 + (t - t_lo) / (t_hi - t_lo) * w
        ys = y0 + h - (v - v_lo) / (v_hi - v_lo) * h
        return np.stack([xs, ys], axis=1).round().astype(np.int32)

    cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), WHITE, -1)
    if pause is not None and pause[1] > pause[0]:
        a, b = px(np.array(pause), np.array([v_lo, v_lo]))[:, 0]
        cv2.rectangle(img, (int(a), y0), (int(b), y0 + h), PAUSE, -1)
    for tick in np.arange(np.ceil(t_lo / 0.25) * 0.25, t_hi + 1e-9, 0.25):
        x = int(px(np.array([tick]), np.array([v_lo]))[0, 0])
        cv2.line(img, (x, y0), (x, y0 + h), GRID, 1)
        _text(img, f"{tick:+.2f}", (x - 20, y0 + h + 16), 0.4)
    for frac in (0.0, 0.5, 1.0):
        v = v_lo + pad + frac * (v_hi - v_lo - 2 * pad)
        y = int(px(np.array([t_lo]), np.array([v]))[0, 1])
        cv2.line(img, (x0, y), (x0 + w, y), GRID, 1)
        _text(img, f"{v:.3g}", (x0 - 62, y + 5), 0.4)
    for t_other in others:
        if t_lo < t_other < t_hi:
            ox = int(px(np.array([t_other]), np.array([v_lo]))[0, 0])
            for yy in range(y0, y0 + h, 8):
                cv2.line(img, (ox, yy), (ox, min(yy + 4, y0 + h)), (120, 120, 120), 1)
    zero_x = int(px(np.array([0.0]), np.array([v_lo]))[0, 0])
    cv2.line(img, (zero_x, y0), (zero_x, y0 + h), (90, 90, 90), 1, cv2.LINE_AA)
    for (tt, vv), color, thick in ((raw, RAW, 2), (smooth, SMOOTH, 2)):
        inside = (tt >= t_lo) & (tt <= t_hi) & np.isfinite(vv)
        if inside.sum() >= 2:
            cv2.polylines(img, [px(tt[inside], vv[inside])], False, color, thick, cv2.LINE_AA)
        for p in px(tt[inside], vv[inside]):
            cv2.circle(img, (int(p[0]), int(p[1])), 2, color, -1, cv2.LINE_AA)
    for p in px(*marks):
        if x0 <= p[0] <= x0 + w:
            cv2.circle(img, (int(p[0]), int(p[1])), 5, MARK, 1, cv2.LINE_AA)
    cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), BLACK, 1)
    _text(img, title, (x0, y0 - 8), 0.5, BLACK, 1)


def _frame(ep: Episode, camera: str, index: int, size: tuple[int, int]) -> np.ndarray:
    data = ep.cameras[camera].frames[index]
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        img = np.zeros((size[1], size[0], 3), np.uint8)
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def render_boundary(
    raw: Episode, sm: SmoothedEpisode, boundary: int = 0, *, before_s: float = 0.5, after_s: float = 1.0
) -> np.ndarray:
    """A BGR image comparing raw and smoothed data around ``sm.changes[boundary]``."""
    if not 0 <= boundary < len(sm.changes):
        raise IndexError(
            f"episode {sm.episode_id} has {len(sm.changes)} takeover/hand-back boundaries; "
            f"boundary {boundary} does not exist"
        )
    ch = sm.changes[boundary]
    ts = np.asarray(raw.timestamps, dtype=np.float64)
    t_b = float(ts[ch.raw_step])
    span = (-before_s, after_s)
    rt, st = ts - t_b, sm.timestamps - t_b
    pause = (0.0, ch.removed_s) if ch.removed_s > 0 else None
    blended = np.asarray(ch.blended_steps, dtype=np.int64)
    pos_in_sm = np.searchsorted(sm.keep, blended)
    width, pw, ph = 1400, 560, 150
    cams = sorted(raw.cameras)
    thumb = (256, 192)
    height = 130 + 3 * (ph + 50) + (thumb[1] + 50 if cams else 0)
    img = np.full((height, width, 3), 248, np.uint8)
    title = (
        f"episode {sm.episode_id}  boundary {boundary}: {ch.kind} at step {ch.raw_step} "
        f"(smoothed step {ch.step})"
    )
    _text(img, title, (20, 32), 0.7, BLACK, 2)
    near = sm.params.frame_window + ch.removed_steps
    dropped = sum(1 for d in sm.dropped_frames if abs(d.step - ch.raw_step) <= near)
    summary = (
        f"pause removed {ch.removed_s:.2f} s ({ch.removed_steps} of {ch.idle_steps} idle steps)   "
        f"action jump {ch.action_jump:.2f} -> blended {len(ch.blended_steps)} steps   "
        f"position jump {ch.position_jump * 1000:.1f} mm   frames dropped {dropped}"
    )
    _text(img, summary, (20, 58), 0.5)
    # legend
    lx = 20
    for label, color in (("raw", RAW), ("smoothed", SMOOTH)):
        cv2.line(img, (lx, 82), (lx + 30, 82), color, 3, cv2.LINE_AA)
        _text(img, label, (lx + 38, 87), 0.5)
        lx += 140
    cv2.rectangle(img, (lx, 74), (lx + 30, 90), PAUSE, -1)
    _text(img, "removed pause", (lx + 38, 87), 0.5)
    lx += 180
    cv2.circle(img, (lx + 15, 82), 6, MARK, 1, cv2.LINE_AA)
    _text(img, "blended action", (lx + 30, 87), 0.5)
    _text(img, "x: time from the boundary (s); dashed: other boundaries", (lx + 200, 87), 0.5)
    others = tuple(float(ts[c.raw_step]) - t_b for i, c in enumerate(sm.changes) if i != boundary)
    dims = sm.params.motion_action_dims[:3]
    pdims = sm.params.position_state_dims[:3]
    raw_action, state = np.asarray(raw.action), np.asarray(raw.state)
    for row in range(3):
        y = 130 + row * (ph + 50)
        if row < len(dims):
            d = dims[row]
            _panel(
                img,
                (90, y, pw, ph),
                f"executed action [{d}] ({AXIS_NAMES[min(row, 3)]})",
                span,
                (rt, raw_action[:, d].astype(np.float64)),
                (st, sm.action[:, d].astype(np.float64)),
                pause,
                (st[pos_in_sm], sm.action[pos_in_sm, d].astype(np.float64)),
                others,
            )
        if row < len(pdims):
            d = pdims[row]
            _panel(
                img,
                (90 + pw + 150, y, pw, ph),
                f"end-effector position [{d}] ({AXIS_NAMES[min(row, 3)]}, m)",
                span,
                (rt, state[:, d].astype(np.float64)),
                (st, state[sm.keep, d].astype(np.float64)),
                pause,
                (np.zeros(0), np.zeros(0)),
                others,
            )
    if cams:
        _frames_row(img, raw, sm, ch.raw_step, ch.removed_stop, cams[0], thumb, 130 + 3 * (ph + 50) + 10)
    return img


def _frames_row(
    img: np.ndarray,
    raw: Episode,
    sm: SmoothedEpisode,
    b: int,
    k: int,
    cam: str,
    thumb: tuple[int, int],
    y: int,
) -> None:
    steps = np.asarray(raw.cameras[cam].step_index)
    kept = sm.cameras[cam].index
    kept_steps = steps[kept]
    picks: list[tuple[str, int | None]] = []
    before = kept[kept_steps < b]
    picks.append(("last frame before (raw)", int(before[-1]) if before.size else None))
    at_b = np.flatnonzero(steps >= b)
    picks.append(("first frame after (raw)", int(at_b[0]) if at_b.size else None))
    after = kept[kept_steps >= k]
    picks.append(("first frame after (smoothed)", int(after[0]) if after.size else None))
    x = 90
    for label, idx in picks:
        _text(
            img,
            f"{cam}: {label}" + (f", step {int(steps[idx])}" if idx is not None else ": none"),
            (x, y + 14),
        )
        if idx is not None:
            tile = _frame(raw, cam, idx, thumb)
            img[y + 22 : y + 22 + thumb[1], x : x + thumb[0]] = tile
        x += thumb[0] + 170
