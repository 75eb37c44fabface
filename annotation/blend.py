"""The blend profile shared by live hand-over blending (the control loop) and data-side boundary
smoothing, so a hand-over smoothed in the data looks like one blended on the robot."""

from __future__ import annotations

import numpy as np

PROFILES = ("minimum_jerk", "linear")


def min_jerk(tau: float) -> float:
    """Minimum-jerk weight ``10 t^3 - 15 t^4 + 6 t^5`` on [0, 1] (0 and 1 outside)."""
    t = min(max(tau, 0.0), 1.0)
    return t * t * t * (10.0 + t * (-15.0 + 6.0 * t))


def blend_weights(window: int, n: int | None = None, profile: str = "minimum_jerk") -> np.ndarray:
    """Weights of the new source at the first ``n`` (default: all) periods of a ``window``-period
    blend: ``profile(k / (window + 1))`` for k = 1..n, all strictly between 0 and 1. Every period of
    the blend mixes both sources; the period after it is the new source alone."""
    if profile not in PROFILES:
        raise ValueError(f"blend profile must be one of {list(PROFILES)}, got {profile!r}")
    count = window if n is None else n
    x = np.arange(1, max(count, 0) + 1, dtype=np.float64) / (window + 1)
    if profile == "linear":
        return x
    x = np.clip(x, 0.0, 1.0)
    return x**3 * (10.0 + x * (-15.0 + 6.0 * x))
