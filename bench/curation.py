"""Curation query speed: reading the facts of every episode (four catalog queries) and evaluating
queries over them in Python, on a store of N cataloged episodes (no episode files: the catalog
alone, as curation reads it).

A third of the episodes have a takeover (takeover, hand-back, ramp end events), a fifth were
relabelled by an annotator, one in fifty by two who disagree.

Prints: the time to catalog them (set-up), the time to read the facts (catalog + label heads +
control events + derivations), and per query the time to evaluate it over all facts, with the
number matched.

Run: ``python bench/curation.py [--episodes 10000] [--store DIR]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from takeover.annotation.curation import gather, pick, statistics
from takeover.annotation.labels import relabel_many
from takeover.storage.label_revisions import Label
from takeover.storage.schema import Event, EventKind
from takeover.storage.store import Store
from takeover.storage.testing import make_episode

QUERIES = (
    "all",
    "label in (success, near-success) and interventions >= 1",
    'operator == "ada" and date >= 2023-11-15 and human_fraction > 10%',
    "disagreement or (label == failure and category == stuck)",
    "task ~ cube and not has_intervention and duration < 30s",
)


def fill(store: Store, n: int) -> None:
    template = make_episode("template", 2, cameras=()).meta
    operators = ("ada", "bo", "cy", "dee")
    for i in range(n):
        steps = 100 + i % 200
        meta = replace(
            template,
            episode_id=f"ep{i:06d}",
            operator=operators[i % len(operators)],
            task=("pick the red cube", "open the drawer", "stack the cups")[i % 3],
            started_at=template.started_at + 60.0 * i,
            ended_at=template.started_at + 60.0 * i + steps / 10,
            outcome=("success", "near_success", "failure")[i % 3 - (i % 7 == 0)],
            seed=i,
        )
        events = [Event(EventKind.START, 0, 0.0)]
        if i % 3 == 0:
            events += [
                Event(EventKind.TAKEOVER, 30, 3.0),
                Event(EventKind.HANDBACK, 60, 6.0),
                Event(EventKind.RAMP_END, 65, 6.5),
            ]
        events.append(Event(EventKind.END, steps, steps / 10))
        store.catalog.add_episode(meta, "d" * 64, steps, events)
    ids = [f"ep{i:06d}" for i in range(n)]
    relabel_many(store, ids[::5], Label(outcome="failure", failure_category="stuck"), annotator="bo")
    relabel_many(store, ids[::50], Label(outcome="success"), annotator="cy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=10_000)
    parser.add_argument("--store", type=Path, help="keep the store here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.store or Path(tmp) / "store"
        with Store.create(root) as store:
            t = time.perf_counter()
            fill(store, args.episodes)
            print(f"set-up: {args.episodes} episodes cataloged in {time.perf_counter() - t:.1f} s")
        with Store.open(root) as store:
            for attempt in range(3):
                t = time.perf_counter()
                facts = gather(store)
                took = time.perf_counter() - t
                print(f"read the facts of {len(facts)} episodes: {1000 * took:.0f} ms (run {attempt + 1})")
            t = time.perf_counter()
            statistics(facts)
            print(f"statistics of all: {1000 * (time.perf_counter() - t):.1f} ms")
            for query in QUERIES:
                t = time.perf_counter()
                chosen = pick(facts, query)
                took = time.perf_counter() - t
                print(f"{1000 * took:7.1f} ms  {len(chosen.episodes):6d} match  {query}")


if __name__ == "__main__":
    main()
