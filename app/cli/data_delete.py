"""`takeover data delete / undelete / gc`: soft deletion of episodes, and removing what is left.

A deleted episode is left out of `data list` and of new versions, but stays readable (pull, show)
while any version holds it; `data gc` removes its blobs once it has been deleted for longer than
the retention period and no version holds it, and orphan blobs older than the grace period
(``[store] grace_period``). See :mod:`takeover.storage.gc`.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from takeover.app.cli.common import add_store_option, grace_period_s, open_store, user_errors
from takeover.storage.durations import DEFAULT_RETENTION, parse_duration
from takeover.storage.errors import StorageError
from takeover.storage.gc import collect_garbage

_AFTER_DELETE = (
    "deleted episodes are left out of `data list` and of new versions; versions that hold them keep "
    "reading them; `takeover data undelete ID` takes a deletion back"
)


@user_errors()
def run_delete(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        before = store.catalog.deletions()
        done = store.delete_episodes(args.ids, args.reason)
        held = store.catalog.references().held
    for episode_id, d in sorted(done.items()):
        if episode_id in before:
            since = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.deleted_at))
            print(f"{episode_id}: deleted already, since {since}")
            continue
        kept = "; a version holds it: it stays readable and gc keeps it" if episode_id in held else ""
        print(f"deleted {episode_id}{kept}")
    print(_AFTER_DELETE)
    return 0


@user_errors()
def run_undelete(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        were = set(store.undelete_episodes(args.ids))
    for episode_id in sorted(set(args.ids)):
        print(f"undeleted {episode_id}" if episode_id in were else f"{episode_id}: was not deleted")
    return 0


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise StorageError(f"--retention: {exc}") from None


@user_errors()
def run_gc(args: argparse.Namespace) -> int:
    retention = _duration(args.retention)
    grace = grace_period_s()
    with open_store(args) as store:
        report = collect_garbage(
            store,
            retention_s=retention,
            grace_s=grace,
            dry_run=args.dry_run,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    for line in report.lines():
        print(line)
    print(report.summary())
    return 0


def add_delete(sub: Any) -> None:
    p = sub.add_parser(
        "delete",
        help="delete episodes (softly: kept while a version holds them)",
        description="Delete episodes softly: they are left out of `data list` and of new versions, and "
        "stay readable while any version holds them. `data gc` removes them after the retention period "
        "when no version holds them; `data undelete` takes a deletion back.",
    )
    p.add_argument("ids", nargs="+", metavar="ID", help="episode ids")
    p.add_argument("--reason", default="", help="why (kept with the deletion)")
    add_store_option(p)
    p.set_defaults(func=run_delete)


def add_undelete(sub: Any) -> None:
    p = sub.add_parser(
        "undelete", help="take deletions back", description="Take the deletion of episodes back."
    )
    p.add_argument("ids", nargs="+", metavar="ID", help="episode ids")
    add_store_option(p)
    p.set_defaults(func=run_undelete)


def add_gc(sub: Any) -> None:
    p = sub.add_parser(
        "gc",
        help="remove deleted episodes past retention, and old orphan blobs",
        description="Remove the blobs (episode file, frame blobs, derived results, videos) and catalog rows "
        "of episodes deleted longer ago than the retention period that no version holds, and orphan blobs "
        "older than the grace period ([store] grace_period). Never removes a blob the catalog references. "
        "Prints what it removed (or would remove) with sizes.",
    )
    p.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    p.add_argument(
        "--retention",
        default=DEFAULT_RETENTION,
        metavar="AGE",
        help=f"how long a deleted episode is kept, e.g. 30d, 12h (default {DEFAULT_RETENTION})",
    )
    add_store_option(p)
    p.set_defaults(func=run_gc)
