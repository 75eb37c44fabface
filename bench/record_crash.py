"""SIGKILL the recording process at random moments, many times, and print how much was lost.

Each trial starts a child that records attempts back to back (200 Hz state, 2 synthetic cameras,
some attempts discarded), kills it with SIGKILL at a random moment, opens the store (which
recovers unfinished attempts) and checks it. Prints the distribution of recorded time lost
before the kill and any consistency problem.

Run: ``python bench/record_crash.py [--trials 100] [--max-delay 3.0]``
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from takeover.recorder.testing import CrashTrial, run_crash_trial


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--max-delay", type=float, default=3.0, help="latest kill, seconds after start")
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    delays = [rng.uniform(0.02, args.max_delay) for _ in range(args.trials)]
    with tempfile.TemporaryDirectory(prefix="takeover-crash-") as tmp:

        def trial(k: int) -> CrashTrial:
            return run_crash_trial(Path(tmp) / f"s{k}", seed=args.seed * 100_000 + k, kill_after_s=delays[k])

        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            results = list(pool.map(trial, range(args.trials)))
    lost = np.array([r.lost_s for r in results])
    problems = [f"trial {k}: {p}" for k, r in enumerate(results) for p in r.problems]
    where = Counter(r.in_flight for r in results)
    print(
        f"{args.trials} trials, {sum(r.episodes for r in results)} attempts started; kill hit: {dict(where)}"
    )
    print(
        "recorded time lost before the kill (s): "
        f"median {np.median(lost):.3f}, p90 {np.percentile(lost, 90):.3f}, "
        f"p99 {np.percentile(lost, 99):.3f}, max {lost.max():.3f}"
    )
    print(f"trials losing more than 1 s: {int((lost > 1.0).sum())}")
    for line in problems:
        print(line)
    print(f"consistency problems: {len(problems)}")
    return 1 if problems or (lost > 1.0).any() else 0


if __name__ == "__main__":
    sys.exit(main())
