"""The station clock offset estimator, against peers whose clocks are skewed and drift."""

from __future__ import annotations

import numpy as np
import pytest

from takeover.app.station.clock import ClockSample, ClockSync


def _round_trips(
    n: int, skew_s: float, drift: float, period_s: float, seed: int, t0: float = 100.0
) -> list[tuple[ClockSample, float]]:
    """n round trips to a peer whose clock reads ``(1 + drift) * t + skew_s``; one-way delays are
    0.1-3 ms each way, independently, with an occasional 40 ms stall. Also returns the local time
    at which the peer read its clock."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        sent = t0 + i * period_s
        up = rng.uniform(1e-4, 3e-3) + (0.04 if rng.random() < 0.05 else 0.0)
        down = rng.uniform(1e-4, 3e-3)
        read_at = sent + up
        peer = (1.0 + drift) * read_at + skew_s
        out.append((ClockSample(sent, peer, peer, read_at + down), read_at))
    return out


def test_no_estimate_before_a_round_trip() -> None:
    assert ClockSync().estimate() is None


@pytest.mark.parametrize("skew_s", [-3.5, 0.0, 7.25, 86400.0 * 3])
def test_offset_of_a_skewed_clock_is_found_within_its_bound(skew_s: float) -> None:
    sync = ClockSync()
    trips = _round_trips(20, skew_s, 0.0, 0.02, seed=1)
    for s, _ in trips:
        sync.add(s)
    est = sync.estimate()
    assert est is not None and est.samples == 20
    for s, read_at in trips:
        err = abs(est.to_local(s.peer_in) - read_at)
        assert err <= est.uncertainty_s + 1e-9
        assert err < 2e-3  # the delays are at most 3 ms each way
    assert est.uncertainty_s < 3e-3


def test_drift_is_tracked_over_an_attempt() -> None:
    """200 ppm of drift (far worse than a real crystal) over 30 s moves the offset by 6 ms; the
    estimate follows it and maps the latest peer times to within a millisecond or two."""
    sync = ClockSync(window_s=10.0)
    trips = _round_trips(1500, 4.0, 200e-6, 0.02, seed=2)
    worst = 0.0
    for i, (s, _) in enumerate(trips):
        sync.add(s)
        if i > 100:
            est = sync.estimate()
            assert est is not None
            # The next period's peer time, mapped back with what is known now.
            nxt_s, nxt_at = trips[min(i + 1, len(trips) - 1)]
            worst = max(worst, abs(est.to_local(nxt_s.peer_in) - nxt_at))
    est = sync.estimate()
    assert est is not None
    assert est.drift == pytest.approx(200e-6, abs=60e-6)
    assert worst < 2e-3


def test_samples_outside_the_window_are_forgotten_and_bad_ones_ignored() -> None:
    sync = ClockSync(window_s=1.0)
    sync.add(ClockSample(0.0, 10.0, 10.0, 0.001))
    sync.add(ClockSample(5.0, float("nan"), float("nan"), 5.001))
    sync.add(ClockSample(5.0, 15.0, 15.0, 4.999))  # received before sent
    sync.add(ClockSample(5.0, 15.0, 14.0, 5.002))  # the peer's reply before its request
    sync.add(ClockSample(5.0, 20.0, 20.0, 5.002))
    est = sync.estimate()
    assert est is not None and est.samples == 1 and sync.total == 2
    assert est.offset_s == pytest.approx(20.0 - 5.001)
    assert est.as_dict()["samples"] == 1


def test_the_uncertainty_bounds_the_error_at_every_round_trip() -> None:
    """A peer 3 s ahead drifting 500 ppm that takes 0-8 ms to answer, over delays of 0.1-3 ms each
    way with stalls: at every round trip, the time the peer read its clock maps to within the
    estimate's uncertainty there, before the drift is fitted and after."""
    rng = np.random.default_rng(5)
    sync = ClockSync(window_s=10.0)
    worst = 0.0
    for i in range(600):
        sent = 50.0 + 0.02 * i
        up = rng.uniform(1e-4, 3e-3) + (0.04 if rng.random() < 0.05 else 0.0)
        busy = rng.uniform(0.0, 8e-3)
        down = rng.uniform(1e-4, 3e-3)
        arrived, read_at, left = sent + up, sent + up + rng.uniform(0.0, busy), sent + up + busy
        peer = [(1.0 + 500e-6) * t + 3.0 for t in (arrived, read_at, left)]
        sync.add(ClockSample(sent, peer[0], peer[2], left + down))
        est = sync.estimate()
        assert est is not None
        err = abs(est.to_local(peer[1]) - read_at)
        assert err <= est.uncertainty_at(read_at) + 1e-12, (i, err, est)
        worst = max(worst, err / est.uncertainty_at(read_at))
        moved = est.moved_to(read_at)
        assert moved.to_local(peer[1]) == pytest.approx(est.to_local(peer[1]), abs=1e-9)
        assert moved.uncertainty_s == pytest.approx(est.uncertainty_at(read_at))
    assert est.drift == pytest.approx(500e-6, abs=50e-6) and est.drift_error < 100e-6
    assert est.uncertainty_s < 3e-3 and worst > 0.05  # a bound, and not a vacuous one
