"""Draw docs/training_labels.png: the derived training labels of a small batch, against time.

Three hand-made episodes at 20 Hz (a success with a takeover and a ramp, a near-success, a failure)
and the default parameters. Top: the value targets of each (solid) and the baseline estimate each
is compared with (thin). Below, one strip per episode: the control class of every step, and under
it the improvement indicator (dark: positive). Run from the repository root:

    python scripts/plot_training_labels.py [OUT.png]
"""

from __future__ import annotations

import sys

import cv2
import numpy as np

from takeover.annotation.training_labels import ControlClass, LabelInput, derive_training_labels
from takeover.annotation.training_params import TrainingLabelParams

W, H = 1300, 720
LEFT, RIGHT, TOP = 110, 130, 50
PLOT_H = 380
WHITE, BLACK, GRID = (255, 255, 255), (30, 30, 30), (225, 225, 225)
COLORS = {"success": (60, 160, 40), "near_success": (20, 150, 230), "failure": (40, 40, 200)}
CLASS_COLORS = {
    ControlClass.POLICY: (200, 160, 90),
    ControlClass.HUMAN: (60, 160, 40),
    ControlClass.HOLD: (170, 170, 170),
    ControlClass.RAMP: (200, 120, 200),
    ControlClass.PRE_INTERVENTION: (40, 90, 230),
}
FONT = cv2.FONT_HERSHEY_SIMPLEX
RATE = 20.0


def _text(img: np.ndarray, s: str, org: tuple[int, int], scale: float = 0.5, color=BLACK) -> None:
    cv2.putText(img, s, org, FONT, scale, color, 1, cv2.LINE_AA)


def _batch() -> list[LabelInput]:
    P, HU, R = int(ControlClass.POLICY), int(ControlClass.HUMAN), int(ControlClass.RAMP)
    success = np.array([P] * 60 + [HU] * 30 + [R] * 10 + [P] * 40, dtype=np.uint8)
    near = np.full(120, P, dtype=np.uint8)
    failure = np.full(200, P, dtype=np.uint8)
    return [
        LabelInput("success", success, (60,), "success", RATE),
        LabelInput("near_success", near, (), "near_success", RATE),
        LabelInput("failure", failure, (), "failure", RATE),
    ]


def draw(out: str) -> None:
    params = TrainingLabelParams()
    labels = derive_training_labels(_batch(), params)
    img = np.full((H, W, 3), 248, dtype=np.uint8)
    x0, x1, y0, y1 = LEFT, W - RIGHT, TOP, TOP + PLOT_H
    t_max = labels.horizon_steps / RATE
    v_lo, v_hi = -params.failure_penalty - 1.05, 0.1

    def px(t: np.ndarray, v: np.ndarray) -> np.ndarray:
        xs = x0 + t / t_max * (x1 - x0)
        ys = y1 - (v - v_lo) / (v_hi - v_lo) * (y1 - y0)
        return np.stack([xs, ys], axis=1).round().astype(np.int32)

    cv2.rectangle(img, (x0, y0), (x1, y1), WHITE, -1)
    for v in np.arange(np.ceil(v_lo), v_hi, 0.5):
        y = int(px(np.zeros(1), np.array([v]))[0, 1])
        cv2.line(img, (x0, y), (x1, y), GRID, 1)
        _text(img, f"{v:+.1f}", (x0 - 50, y + 5), 0.45)
    for t in np.arange(0, t_max + 1e-9, 1.0):
        x = int(px(np.array([t]), np.zeros(1))[0, 0])
        cv2.line(img, (x, y0), (x, y1), GRID, 1)
        _text(img, f"{t:.0f} s", (x - 12, y1 + 18), 0.45)
    cv2.rectangle(img, (x0, y0), (x1, y1), BLACK, 1)
    _text(img, "value target (thick) and baseline estimate (thin) against time", (x0, y0 - 18), 0.6)
    for e in labels.episodes:
        t = np.arange(e.value_target.size) / RATE
        color = COLORS[e.outcome]
        cv2.polylines(img, [px(t, e.value_estimate.astype(np.float64))], False, color, 1, cv2.LINE_AA)
        cv2.polylines(img, [px(t, e.value_target.astype(np.float64))], False, color, 3, cv2.LINE_AA)
        end = px(t[-1:], e.value_target[-1:].astype(np.float64))[0]
        _text(img, e.outcome.replace("_", "-"), (int(end[0]) + 6, int(end[1]) + 5), 0.5, color)
    strip_y = y1 + 50
    for e in labels.episodes:
        _text(img, e.outcome.replace("_", "-"), (8, strip_y + 14), 0.45)
        xs = px(np.arange(e.control_class.size + 1) / RATE, np.zeros(e.control_class.size + 1))[:, 0]
        for k, cls in enumerate(e.control_class.tolist()):
            cv2.rectangle(
                img,
                (int(xs[k]), strip_y),
                (int(xs[k + 1]), strip_y + 18),
                CLASS_COLORS[ControlClass(cls)],
                -1,
            )
            shade = (40, 40, 40) if e.improvement[k] else (215, 215, 215)
            cv2.rectangle(img, (int(xs[k]), strip_y + 21), (int(xs[k + 1]), strip_y + 31), shade, -1)
        strip_y += 52
    legend_x = x0
    for cls, color in CLASS_COLORS.items():
        cv2.rectangle(img, (legend_x, strip_y), (legend_x + 16, strip_y + 14), color, -1)
        _text(img, cls.name.lower(), (legend_x + 22, strip_y + 12), 0.45)
        legend_x += 170
    cv2.rectangle(img, (legend_x, strip_y), (legend_x + 16, strip_y + 14), (40, 40, 40), -1)
    _text(img, "improvement positive", (legend_x + 22, strip_y + 12), 0.45)
    _text(
        img,
        f"threshold {labels.threshold:.3f} on the advantage (to the episode end): "
        f"{100 * labels.positive_fraction:.0f} % of {labels.non_human_steps} non-human steps positive, "
        f"horizon {labels.horizon_steps} steps",
        (x0, strip_y + 40),
        0.5,
    )
    if not cv2.imwrite(out, img):
        raise SystemExit(f"could not write {out}")
    print(f"wrote {out}")


if __name__ == "__main__":
    draw(sys.argv[1] if len(sys.argv) > 1 else "docs/training_labels.png")
