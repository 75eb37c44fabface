"""`takeover curate`: the curation screen on a store (app/gui/curate/)."""

from __future__ import annotations

import argparse
from typing import Any

from takeover.annotation.labels import Rule
from takeover.app.cli.common import add_store_option, open_store, store_root
from takeover.app.cli.data_episodes import add_resolve_option
from takeover.storage.store import Store


def run_curate(args: argparse.Namespace) -> int:
    from takeover.app.gui.curate.app import run_curate as show

    def opener() -> Store:
        return open_store(args)

    return show(opener, rule=Rule(args.resolve), query=args.query or "", where=str(store_root(args)))


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "curate",
        help="the curation screen: query episodes, freeze versions, diff and export them",
        description="Open the curation screen on the store: a query over the episodes (docs/curation.md) "
        "with pickers, the matching episodes and their statistics, freezing them as a tagged version, "
        "the versions by lineage with a diff between two, and export with a progress bar.",
    )
    p.add_argument("--query", metavar="EXPR", help="start with this query")
    add_resolve_option(p, "the label a query reads")
    add_store_option(p)
    p.set_defaults(func=run_curate)
    return p
