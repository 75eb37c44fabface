"""What a second pull of the same version costs, with and without hashing the cache again.

Builds a store of ``--episodes`` episodes of ``--mb`` MB each (wide random state streams: bytes are
bytes to a hash), commits a version, then times three pulls into one cache: the first (copy and
hash every blob), a second with ``verify="stamp"`` (the default: cached files that have not changed
since they were hashed are trusted) and a third with ``verify="full"`` (every blob hashed again).

Run: ``python bench/pull.py [--episodes 4] [--mb 100]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from takeover.storage import pull
from takeover.storage.cache import Verify
from takeover.storage.store import Store
from takeover.storage.testing import make_episode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--mb", type=float, default=100.0, help="size of each episode")
    args = ap.parse_args()
    state_dim = 1024
    steps = max(1, int(args.mb * 1e6 / (4 * state_dim)))
    with tempfile.TemporaryDirectory(prefix="takeover-pull-") as tmp:
        root = Path(tmp)
        with Store.open_or_create(root / "store") as store:
            for k in range(args.episodes):
                store.add_episode(make_episode(f"ep{k}", steps, seed=k, state_dim=state_dim))
            store.commit("bench")
            total = sum(store.blobs.size(e.digest) for e in store.episodes_in("bench"))
            timings = {}
            runs: list[tuple[str, Verify]] = [
                ("first pull (copy + hash)", "stamp"),
                ("second, verify=stamp", "stamp"),
                ("third, verify=full", "full"),
            ]
            for name, verify in runs:
                t0 = time.perf_counter()
                ds = pull("bench", store, cache_dir=root / "cache", verify=verify)
                timings[name] = time.perf_counter() - t0
                ds.close()
        print(f"version: {args.episodes} episodes, {total / 1e6:.0f} MB")
        for name, dt in timings.items():
            print(f"  {name:26s} {dt:7.3f} s   {total / 1e6 / dt:8.0f} MB/s")
        stamp, full = timings["second, verify=stamp"], timings["third, verify=full"]
        print(
            f"  a repeated pull with stamps takes {stamp / full:.3f} of the time of a full re-hash "
            f"({full / stamp:.0f}x faster)"
        )


if __name__ == "__main__":
    main()
