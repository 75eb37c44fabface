"""One clock per episode: the offset between a remote station's clock and the engine's.

A station on another computer stamps its observations and camera frames with its own monotonic
clock, which has nothing to do with the engine's: the two differ by an arbitrary offset (seconds
or days) and drift apart slowly (tens of parts per million for ordinary crystals). The engine
estimates the offset from request/reply round trips, as NTP does: a request leaves at local time
``sent``, the station reads its clock when the request arrives (``peer_in``) and again when it
replies (``peer_out``), and the reply arrives at ``received``. The station's own time between the
two readings is not network time, so ``peer_out - received <= offset <= peer_in - sent``: the
sample's offset is the middle of that interval and its error at most half the interval's width,
the round trip's network delay (``rtt``).

:class:`ClockSync` keeps the samples of the last ``window_s`` seconds, trusts the ones with
network delays close to the shortest (the least queueing, and no heavy reply), and fits the offset
and its drift through them. The
:class:`OffsetEstimate` it returns maps station times onto the engine's clock and bounds its
error: every sample confines the true offset to its own interval, so the bound is how far the fit
strays from the best-placed sample's interval (usually the latest round trip's). It is recorded
with every episode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

MIN_DRIFT_SPAN_S = 2.0
"""Drift is fitted only once the trusted samples span this long; before, it is taken as zero."""
MAX_DRIFT = 1e-3
"""Larger fitted drifts (1 ms per second) are not a clock's: they are clamped."""
TRUSTED_RTT = 2.0
TRUSTED_SLACK_S = 50e-6
MIN_TRUSTED = 8
"""The line is fitted through the round trips whose network delay is at most ``TRUSTED_RTT``
times the shortest plus ``TRUSTED_SLACK_S``, and through at least the ``MIN_TRUSTED`` shortest."""
DRIFT_ERROR_FLOOR = 1e-6
"""Least error assumed of a fitted drift (1 ppm), added to three standard errors of its fit."""


@dataclass(frozen=True)
class ClockSample:
    """One round trip, in seconds: local send and receive times, and the peer's clock when the
    request arrived there and when its reply left (the same reading for a peer that reads once)."""

    sent: float
    peer_in: float
    peer_out: float
    received: float

    @property
    def rtt(self) -> float:
        """Network delay of the round trip: its local duration less the time the peer held it."""
        return (self.received - self.sent) - (self.peer_out - self.peer_in)

    @property
    def midpoint(self) -> float:
        return 0.5 * (self.sent + self.received)

    @property
    def offset(self) -> float:
        """Peer clock minus local clock, at the midpoint of the round trip."""
        return 0.5 * ((self.peer_in - self.sent) + (self.peer_out - self.received))


@dataclass(frozen=True)
class OffsetEstimate:
    """``peer = local + offset_s + drift * (local - at)``, within ``uncertainty_s`` at ``at``."""

    offset_s: float
    drift: float
    """Change of the offset per second of local time (s/s; 50e-6 is 50 ppm)."""
    uncertainty_s: float
    """Bound on the error of :meth:`to_local` at ``at``: over the round trips, the smallest of
    (how far the fit is from the sample's offset + half its network delay + ``drift_error`` times
    its distance from ``at``). The peer's true offset lies within half the network delay of every
    sample's offset, so this holds as long as the drift is within ``drift_error`` of the fit."""
    at: float
    """Local time the offset refers to (the latest round trip, or the time it was moved to)."""
    samples: int
    """How many round trips the estimate rests on."""
    best_rtt_s: float
    drift_error: float
    """Bound assumed on the error of ``drift`` (``MAX_DRIFT`` while no drift is fitted): away
    from ``at`` the uncertainty grows by this much per second (:meth:`uncertainty_at`)."""

    def offset_at(self, local: float) -> float:
        return self.offset_s + self.drift * (local - self.at)

    def uncertainty_at(self, local: float) -> float:
        return self.uncertainty_s + self.drift_error * abs(local - self.at)

    def to_local(self, peer: float) -> float:
        """The local time at which the peer's clock read ``peer``."""
        return (peer - self.offset_s + self.drift * self.at) / (1.0 + self.drift)

    def moved_to(self, local: float) -> OffsetEstimate:
        """The same estimate, referred to local time ``local`` (its offset and uncertainty there)."""
        offset, uncertainty = self.offset_at(local), self.uncertainty_at(local)
        return replace(self, offset_s=offset, uncertainty_s=uncertainty, at=local)

    def as_dict(self) -> dict[str, float | int]:
        """Plain numbers, for the episode's metadata."""
        return {
            "offset_s": self.offset_s,
            "drift": self.drift,
            "uncertainty_s": self.uncertainty_s,
            "at": self.at,
            "samples": self.samples,
            "best_rtt_s": self.best_rtt_s,
            "drift_error": self.drift_error,
        }


class ClockSync:
    """Offset and drift of a peer's clock from round trips (see the module's docstring).

    Samples live in fixed numpy rings, so :meth:`add` is a few array writes and a fit (done
    lazily, when :meth:`estimate` is asked after a new sample) costs tens of microseconds at the
    most samples: cheap enough for every control period."""

    def __init__(
        self, window_s: float = 30.0, max_samples: int = 512, min_trusted: int = MIN_TRUSTED
    ) -> None:
        if not (window_s > 0 and max_samples >= 1 and min_trusted >= 1):
            raise ValueError("window_s > 0, max_samples >= 1 and min_trusted >= 1 are required")
        self.window_s = float(window_s)
        self.min_trusted = min_trusted
        self._ring = np.zeros((4, max_samples), dtype=np.float64)
        """Rows: sent, peer_in, peer_out, received; slot ``total % max_samples`` is written next."""
        self._estimate: OffsetEstimate | None = None
        self.total = 0
        """Round trips accepted since the start (also those that fell out of the window)."""

    def add(self, sample: ClockSample) -> None:
        """One round trip. Samples whose times are not finite or that run backwards are ignored."""
        values = (sample.sent, sample.peer_in, sample.peer_out, sample.received)
        if not all(math.isfinite(v) for v in values):
            return
        if sample.rtt < 0 or sample.peer_out < sample.peer_in:
            return
        self._ring[:, self.total % self._ring.shape[1]] = values
        self.total += 1
        self._estimate = None

    def clear(self) -> None:
        self.total = 0
        self._estimate = None

    def estimate(self) -> OffsetEstimate | None:
        """The current estimate, or None before the first round trip."""
        if self._estimate is None and self.total:
            self._estimate = self._fit()
        return self._estimate

    def _window(self) -> np.ndarray:
        """The samples of the last ``window_s`` seconds, oldest first (a (4, n) array)."""
        size = self._ring.shape[1]
        n = min(self.total, size)
        head = self.total % size
        kept = self._ring[:, :n] if n < size else np.roll(self._ring, -head, axis=1)
        latest = kept[3, -1]
        return kept[:, np.searchsorted(kept[3], latest - self.window_s, side="left") :]

    def _fit(self) -> OffsetEstimate:
        sent, peer_in, peer_out, received = self._window()
        n = len(sent)
        rtt = (received - sent) - (peer_out - peer_in)
        mid_all = 0.5 * (sent + received)
        off_all = 0.5 * ((peer_in - sent) + (peer_out - received))
        # The line is fitted through the trusted samples: those whose network delay is close to the
        # shortest (a reply that carries images is slower one way than its request, which skews
        # its midpoint; a bare 'clock' round trip is not), and at least the shortest few.
        best = float(rtt.min())
        keep = max(
            min(self.min_trusted, n), int(np.count_nonzero(rtt <= TRUSTED_RTT * best + TRUSTED_SLACK_S))
        )
        trusted = np.argpartition(rtt, keep - 1)[:keep] if keep < n else np.arange(n)
        mid, off = mid_all[trusted], off_all[trusted]
        at = float(mid_all[-1])
        drift, drift_error = 0.0, MAX_DRIFT
        if mid.max() - mid.min() >= MIN_DRIFT_SPAN_S and len(trusted) >= 3:
            x = mid - mid.mean()
            sxx = float(np.dot(x, x))
            slope = float(np.dot(x, off - off.mean()) / sxx)
            drift = float(np.clip(slope, -MAX_DRIFT, MAX_DRIFT))
            residual = off - off.mean() - slope * x
            spread = math.sqrt(float(np.dot(residual, residual)) / max(len(trusted) - 2, 1) / sxx)
            drift_error = min(MAX_DRIFT, 3.0 * spread + DRIFT_ERROR_FLOOR)
        offset = float(np.mean(off - drift * (mid - at)))
        # Every sample bounds the true offset at its midpoint by half its network delay.
        miss = np.abs(off_all - (offset + drift * (mid_all - at)))
        bound = miss + 0.5 * rtt + drift_error * np.abs(at - mid_all)
        return OffsetEstimate(
            offset_s=offset,
            drift=drift,
            uncertainty_s=float(bound.min()),
            at=at,
            samples=n,
            best_rtt_s=best,
            drift_error=drift_error,
        )
