"""Value-axis ticks for short plots: pyqtgraph's own put three or four labels on top of each
other on an axis a few tens of pixels high (the console's value strip, the review screen's stacked
plots)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg


def round_ticks(low: float, high: float, most: int = 2) -> list[tuple[float, str]]:
    """Labelled ticks over ``low..high``: one to ``most`` round values, on the finest step of 1, 2
    or 5 times a power of ten that gives at most ``most`` of them; labels with a minus sign."""
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low or most < 1:
        return []
    power = 10.0 ** np.floor(np.log10(high - low))
    for step in (m * power * scale for scale in (0.1, 1.0, 10.0) for m in (1.0, 2.0, 5.0)):
        first = np.ceil(low / step - 1e-9)
        values = [(first + k) * step for k in range(most + 1) if (first + k) * step <= high + 1e-9 * step]
        if 1 <= len(values) <= most:
            decimals = min(10, max(0, int(-np.floor(np.log10(step) + 1e-9))))
            return [(float(v), f"{v:.{decimals}f}".replace("-", "\N{MINUS SIGN}")) for v in values]
    return []


def keep_round_ticks(plot: pg.PlotItem, most: int) -> None:
    """Label the left axis of ``plot`` with :func:`round_ticks` of its value range, now and
    whenever the range changes."""
    axis, view = plot.getAxis("left"), plot.getViewBox()

    def label(_view: Any, y_range: Any) -> None:
        axis.setTicks([round_ticks(float(y_range[0]), float(y_range[1]), most)])

    view.sigYRangeChanged.connect(label)
    label(view, view.viewRange()[1])
