"""Durations as people write them in settings and options: ``30d``, ``24h``, ``90m``, ``45s``."""

from __future__ import annotations

import re

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")

DEFAULT_GRACE = "24h"
"""How young an unreferenced blob must be to count as another station's work in flight."""
DEFAULT_RETENTION = "30d"
"""How long a deleted episode is kept before `takeover data gc` may remove its blobs."""


def parse_duration(text: str) -> float:
    """Seconds in ``text`` (a number with s, m, h or d; a bare number is seconds)."""
    m = _DURATION.match(str(text))
    if m is None:
        raise ValueError(f"a duration is a number with s, m, h or d (e.g. 24h, 30d), got {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def describe_age(seconds: float) -> str:
    """'3 d', '5 h', '12 min', '40 s'."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{max(seconds, 0):.0f} s"
