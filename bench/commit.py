"""Commit + tag latency as the catalog grows: everything, and a selection of 50 episodes.

Catalogs ``--sizes`` episodes (each with one frame blob, as the recorder makes them; the blobs
themselves are never written: a commit reads the catalog alone), then times ``Store.commit`` of all
of them and of 50 of them, at each size. ``--catalog-url`` runs it on PostgreSQL instead of the
store's SQLite catalog.

Run: ``python bench/commit.py [--sizes 1000 3000 10000] [--catalog-url postgresql+psycopg://...]``
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from takeover.storage.store import Store
from takeover.storage.testing import make_episode


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000])
    ap.add_argument("--catalog-url", default=None, help="an empty PostgreSQL database (default: SQLite)")
    args = ap.parse_args()
    template = make_episode("template", 4, cameras=())
    with (
        tempfile.TemporaryDirectory(prefix="takeover-commit-") as tmp,
        Store.create(Path(tmp) / "store", args.catalog_url) as store,
    ):
        have = 0
        print(f"catalog: {'PostgreSQL' if args.catalog_url else 'SQLite (WAL)'}")
        for size in sorted(args.sizes):
            for k in range(have, size):
                meta = replace(template.meta, episode_id=f"ep{k:06d}", started_at=1000.0 + k)
                store.catalog.add_episode(
                    meta, _digest(f"file{k}"), 4, template.events, [_digest(f"frames{k}")]
                )
            have = size
            t0 = time.perf_counter()
            store.commit(f"all-{size}")
            everything = time.perf_counter() - t0
            some = [f"ep{k:06d}" for k in range(size - 50, size)]
            t0 = time.perf_counter()
            store.commit(f"fifty-{size}", some)
            fifty = time.perf_counter() - t0
            print(
                f"  {size:6d} episodes: commit + tag everything {everything * 1000:7.1f} ms "
                f"({everything / size * 1e6:.0f} us per episode), 50 episodes {fifty * 1000:6.1f} ms"
            )


if __name__ == "__main__":
    main()
