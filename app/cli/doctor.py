"""`takeover doctor`: check the dataset store and the recorder's logs, and repair them.

The store part is `takeover data fsck` (:mod:`takeover.storage.fsck`): cataloged episodes whose
file or frame blob is missing or corrupt, orphan blobs, temporary files, versions whose manifest
or episodes no longer hold, tags naming no version; each problem with what to do about it. On top
of that it reports attempts whose write-ahead log was left unfinished by a crash. With
``--repair`` it recovers those attempts into the store (marked recovered, with the time they
were cut), removes orphans and temporary files, and says what it did. An unreferenced blob younger
than the grace period (``[store] grace_period``) is another station's episode in flight: reported,
never removed. Exit status 0 when the store is healthy (after repair), 1 when problems remain, 2 on
a usage error. Do not repair a store a recorder is writing to (its unfinished recordings would be
recovered under it).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from takeover.app.cli.common import add_store_option, grace_period_s, open_store, store_root, user_errors
from takeover.recorder.recovery import leftover_trash, pending_logs, recover_all
from takeover.storage.fsck import fsck
from takeover.storage.store import Store


def _unfinished(store: Store) -> list[str]:
    lines = [f"unfinished recording: {p.name} (recover with --repair)" for p in pending_logs(store)]
    lines += [f"leftover of a removed recording: {p.name}" for p in leftover_trash(store)]
    return lines


@user_errors()
def run_doctor(args: argparse.Namespace) -> int:
    root: Path = store_root(args)
    grace = grace_period_s()
    with open_store(args) as store:
        if args.repair:
            for outcome in recover_all(store):
                print(outcome.line())
            for line in store.repair(store.check(verify=not args.quick, grace_s=grace), grace_s=grace):
                print(line)
        report = fsck(store, verify=not args.quick, grace_s=grace)
        problems = [p.line() for p in report.problems] + _unfinished(store)
    for line in report.notes + problems:
        print(line)
    checked = (
        f"{report.episodes} episodes, {report.blobs_checked} blobs, {report.versions} versions, "
        f"{report.tags} tags checked"
    )
    if problems:
        print(f"{len(problems)} problem(s) in the store at {root} ({checked})")
        return 1
    print(f"store at {root} is healthy ({checked})")
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `doctor` on an argparse subparsers object."""
    p = subparsers.add_parser(
        "doctor",
        help="check the dataset store and unfinished recordings; --repair fixes them",
        description="Check the dataset store and the recorder's logs; with --repair, recover unfinished "
        "recordings and remove orphan blobs and temporary files. Exit 0 when healthy, 1 otherwise.",
    )
    add_store_option(p)
    p.add_argument("--repair", action="store_true", help="recover unfinished recordings, remove orphans")
    p.add_argument("--quick", action="store_true", help="do not re-hash blobs (presence only)")
    p.set_defaults(func=run_doctor)
    return p
