"""One clock per episode: the offset between a remote station's clock and the engine's.

A station on another computer stamps its observations and camera frames with its own monotonic
clock, which has nothing to do with the engine's: the two differ by an arbitrary offset (seconds
or days) and drift apart slowly (tens of parts per million for ordinary crystals). The engine
estimates the offset from request/reply round trips, as NTP does: a request leaves at local time
``sent``, the station reads its clock at ``peer`` while answering, and the reply arrives at
``received``. Then ``peer - received <= offset <= peer - sent``: the sample's offset is the
midpoint, and its error is at most half the round trip.

:class:`ClockSync` keeps the samples of the last ``window_s`` seconds, trusts the ones with the
shortest round trips (the least queueing), and fits the offset and its drift through them. The
:class:`OffsetEstimate` it returns maps station times onto the engine's clock and says how
uncertain that is; it is recorded with every episode.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

MIN_DRIFT_SPAN_S = 2.0
"""Drift is fitted only once the trusted samples span this long; before, it is taken as zero."""
MAX_DRIFT = 1e-3
"""Larger fitted drifts (1 ms per second) are not a clock's: they are clamped."""


@dataclass(frozen=True)
class ClockSample:
    """One round trip, in seconds: local send and receive times and the peer's clock between."""

    sent: float
    peer: float
    received: float

    @property
    def rtt(self) -> float:
        return self.received - self.sent

    @property
    def midpoint(self) -> float:
        return 0.5 * (self.sent + self.received)

    @property
    def offset(self) -> float:
        """Peer clock minus local clock, at the midpoint of the round trip."""
        return self.peer - self.midpoint


@dataclass(frozen=True)
class OffsetEstimate:
    """``peer = local + offset_s + drift * (local - at)``, within ``uncertainty_s``."""

    offset_s: float
    drift: float
    """Change of the offset per second of local time (s/s; 50e-6 is 50 ppm)."""
    uncertainty_s: float
    """Bound on the error of :meth:`to_local` near ``at``: half the shortest round trip plus the
    spread of the trusted samples around the fit."""
    at: float
    """Local time the offset refers to (the latest trusted sample)."""
    samples: int
    """How many round trips the estimate rests on."""
    best_rtt_s: float

    def offset_at(self, local: float) -> float:
        return self.offset_s + self.drift * (local - self.at)

    def to_local(self, peer: float) -> float:
        """The local time at which the peer's clock read ``peer``."""
        return (peer - self.offset_s + self.drift * self.at) / (1.0 + self.drift)

    def as_dict(self) -> dict[str, float | int]:
        """Plain numbers, for the episode's metadata."""
        return {
            "offset_s": self.offset_s,
            "drift": self.drift,
            "uncertainty_s": self.uncertainty_s,
            "at": self.at,
            "samples": self.samples,
            "best_rtt_s": self.best_rtt_s,
        }


class ClockSync:
    """Offset and drift of a peer's clock from round trips (see the module's docstring)."""

    def __init__(self, window_s: float = 30.0, max_samples: int = 512, trusted_fraction: float = 0.5) -> None:
        if not (window_s > 0 and max_samples >= 1 and 0 < trusted_fraction <= 1):
            raise ValueError("window_s > 0, max_samples >= 1 and 0 < trusted_fraction <= 1 are required")
        self.window_s = float(window_s)
        self.trusted_fraction = float(trusted_fraction)
        self._samples: deque[ClockSample] = deque(maxlen=max_samples)
        self._estimate: OffsetEstimate | None = None
        self.total = 0
        """Round trips seen since the start (also those that fell out of the window)."""

    def add(self, sample: ClockSample) -> None:
        """One round trip. Samples whose times are not finite or that run backwards are ignored."""
        if not all(math.isfinite(v) for v in (sample.sent, sample.peer, sample.received)):
            return
        if sample.rtt < 0:
            return
        self._samples.append(sample)
        self.total += 1
        horizon = sample.received - self.window_s
        while self._samples and self._samples[0].received < horizon:
            self._samples.popleft()
        self._estimate = None

    def clear(self) -> None:
        self._samples.clear()
        self._estimate = None

    def estimate(self) -> OffsetEstimate | None:
        """The current estimate, or None before the first round trip."""
        if self._estimate is None and self._samples:
            self._estimate = self._fit()
        return self._estimate

    def _fit(self) -> OffsetEstimate:
        n = len(self._samples)
        sent = np.fromiter((s.sent for s in self._samples), np.float64, n)
        received = np.fromiter((s.received for s in self._samples), np.float64, n)
        peer = np.fromiter((s.peer for s in self._samples), np.float64, n)
        rtt = received - sent
        keep = max(1, math.ceil(n * self.trusted_fraction))
        # The trusted samples: the shortest round trips (ties broken by recency).
        order = np.lexsort((-np.arange(n), rtt))[:keep]
        mid = 0.5 * (sent[order] + received[order])
        off = peer[order] - mid
        at = float(mid.max())
        drift = 0.0
        if mid.max() - mid.min() >= MIN_DRIFT_SPAN_S and len(order) >= 3:
            x = mid - mid.mean()
            drift = float(np.clip(np.dot(x, off - off.mean()) / np.dot(x, x), -MAX_DRIFT, MAX_DRIFT))
        residual = off - drift * (mid - at)
        offset = float(residual.mean())
        spread = float(np.abs(residual - offset).max()) if len(residual) > 1 else 0.0
        best = float(rtt.min())
        return OffsetEstimate(
            offset_s=offset,
            drift=drift,
            uncertainty_s=0.5 * best + spread,
            at=at,
            samples=n,
            best_rtt_s=best,
        )
