"""Pacing of the control loop: absolute deadlines on an injected monotonic clock.

Period ``i`` ends at ``t0 + (i + 1) * dt``; a late period does not shift later deadlines
(no drift), and every overrun is counted. Sections of a period are timed separately.

The *period error* of a period is how late the next period starts: the time it actually starts
minus its deadline (>= 0; an overrun's error is how far past the deadline the work ran).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


class Clock:
    """The real monotonic clock."""

    def now(self) -> float:
        return time.monotonic()

    def sleep_until(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)


class FakeClock(Clock):
    """A clock that only moves when told to (tests)."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt

    def sleep_until(self, deadline: float) -> None:
        self.t = max(self.t, deadline)


@dataclass
class SectionStats:
    count: int = 0
    total: float = 0.0
    worst: float = 0.0

    def add(self, dt: float) -> None:
        self.count += 1
        self.total += dt
        self.worst = max(self.worst, dt)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0


@dataclass
class CycleTimer:
    rate_hz: float
    clock: Clock = field(default_factory=Clock)
    overruns: int = 0
    periods: int = 0
    sections: dict[str, SectionStats] = field(default_factory=dict)
    _t0: float = 0.0
    _index: int = 0
    last_period_error: float = 0.0
    keep_errors: int = 100_000
    """How many recent period errors are kept for percentiles."""
    errors: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        if not self.rate_hz > 0:
            raise ValueError(f"rate_hz must be positive, got {self.rate_hz}")
        self.dt = 1.0 / self.rate_hz
        self.errors = deque(maxlen=self.keep_errors)

    def start(self) -> float:
        self._t0 = self.clock.now()
        self._index = 0
        return self._t0

    @property
    def deadline(self) -> float:
        return self._t0 + (self._index + 1) * self.dt

    @contextmanager
    def section(self, name: str) -> Iterator[None]:
        t = self.clock.now()
        try:
            yield
        finally:
            self.sections.setdefault(name, SectionStats()).add(self.clock.now() - t)

    def wait(self) -> float:
        """Sleep until this period's deadline; return the time the next period starts."""
        deadline = self.deadline
        now = self.clock.now()
        if now > deadline:
            self.overruns += 1
            self.last_period_error = now - deadline
            # Skip the deadlines already missed so one slow period does not cause a burst.
            self._index += int((now - deadline) / self.dt) + 1
            woke = now
        else:
            self.clock.sleep_until(deadline)
            woke = self.clock.now()
            self.last_period_error = woke - deadline
            self._index += 1
        self.errors.append(self.last_period_error)
        self.periods += 1
        return woke

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {"periods": float(self.periods), "overruns": float(self.overruns)}
        if self.errors:
            p50, p99 = self.error_percentiles((50.0, 99.0))
            out["period_error_p50_ms"] = 1000.0 * p50
            out["period_error_p99_ms"] = 1000.0 * p99
            out["period_error_max_ms"] = 1000.0 * max(self.errors)
        for name, s in self.sections.items():
            out[f"{name}_ms"] = 1000.0 * s.mean
            out[f"{name}_max_ms"] = 1000.0 * s.worst
        return out

    def error_percentiles(self, q: tuple[float, ...]) -> tuple[float, ...]:
        if not self.errors:
            return tuple(0.0 for _ in q)
        values = sorted(self.errors)
        n = len(values)
        return tuple(values[min(n - 1, max(0, math.ceil(p / 100.0 * n) - 1))] for p in q)
