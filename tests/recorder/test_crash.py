"""SIGKILL the recording process at random moments; the store must stay consistent and lose at
most 1 s of what was handed to the recorder before the kill. bench/record_crash.py does more."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from takeover.recorder.testing import CrashTrial, run_crash_trial

TRIALS = 20


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_at_most_one_second(tmp_path: Path) -> None:
    rng = random.Random(20240601)
    delays = [rng.uniform(0.05, 1.6) for _ in range(TRIALS)]

    def trial(k: int) -> CrashTrial:
        return run_crash_trial(tmp_path / f"store-{k}", seed=k, kill_after_s=delays[k])

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(trial, range(TRIALS)))
    problems = [f"trial {k}: {p}" for k, r in enumerate(results) for p in r.problems]
    assert problems == []
    assert max(r.lost_s for r in results) <= 1.0
    assert sum(r.episodes for r in results) >= TRIALS
