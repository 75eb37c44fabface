"""Commit + tag latency as the catalog grows: everything, and a parent plus 50 episodes.

Catalogs ``--sizes`` episodes (each with one frame blob, as the recorder makes them; the blobs
themselves are never written: a commit reads the catalog alone), then at each size times
``Store.commit`` of all of them, and, after cataloging 50 more, of that version plus the 50
(``commit(tag, parent=..., add=[50 ids])``). Prints the bytes each version takes in the catalog
(a version made from a parent is stored as its change from it); then a lineage of children, each
a delta on the last, and how long the deepest takes to read. ``--catalog-url`` runs it on
PostgreSQL instead of the store's SQLite catalog.

Run: ``python bench/commit.py [--sizes 1000 3000 10000] [--catalog-url postgresql+psycopg://...]``
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from takeover.storage.manifest_store import FULL_EVERY
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

        def catalog_up_to(n: int) -> list[str]:
            nonlocal have
            ids = []
            for k in range(have, n):
                meta = replace(template.meta, episode_id=f"ep{k:06d}", started_at=1000.0 + k)
                store.catalog.add_episode(
                    meta, _digest(f"file{k}"), 4, template.events, [_digest(f"frames{k}")]
                )
                ids.append(meta.episode_id)
            have = n
            return ids

        print(f"catalog: {'PostgreSQL' if args.catalog_url else 'SQLite (WAL)'}")
        for size in sorted(args.sizes):
            catalog_up_to(max(size, have))
            t0 = time.perf_counter()
            everything, _ = store.commit(f"all-{size}")
            t_all = time.perf_counter() - t0
            fifty = catalog_up_to(have + 50)
            t0 = time.perf_counter()
            child, _ = store.commit(f"plus-{size}", parent=f"all-{size}", add=fifty)
            t_fifty = time.perf_counter() - t0
            stored_all = store.catalog.version_storage(everything).bytes
            stored_fifty = store.catalog.version_storage(child).bytes
            t0 = time.perf_counter()
            store.resolve(f"plus-{size}")
            t_read = time.perf_counter() - t0
            print(
                f"  {size:6d} episodes: commit + tag everything {t_all * 1000:7.1f} ms "
                f"({t_all / size * 1e6:.0f} us per episode, {stored_all / 1024:.0f} KiB stored); "
                f"parent + 50 {t_fifty * 1000:6.1f} ms ({stored_fifty / 1024:.1f} KiB stored); "
                f"reading it back {t_read * 1000:.0f} ms"
            )
        # A long lineage: each child one more delta, until a whole manifest is stored again.
        parent, times, depths = f"plus-{max(args.sizes)}", [], []
        for k in range(FULL_EVERY + 1):
            tag = f"chain-{k}"
            ten = catalog_up_to(have + 10)
            t0 = time.perf_counter()
            digest, _ = store.commit(tag, parent=parent, add=ten)
            times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            store.resolve(tag)
            depths.append((store.catalog.version_storage(digest).depth, time.perf_counter() - t0))
            parent = tag
        deepest = max(depths)
        print(
            f"  lineage of {len(times)} children (+10 each, depths {' '.join(str(d) for d, _ in depths)}): "
            f"commit + tag {min(times) * 1000:.0f}-{max(times) * 1000:.0f} ms; "
            f"reading the deepest (depth {deepest[0]}) {deepest[1] * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
