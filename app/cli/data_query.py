"""`takeover data query "EXPR"`: the episodes a curation query matches and their statistics
(:mod:`takeover.annotation.curation`; the language: docs/curation.md). `data commit TAG --query
"EXPR"` freezes the same episodes (app/cli/data.py)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from takeover.annotation.curation import FIELDS, EpisodeFacts, Selection, gather, parse_query, pick
from takeover.annotation.labels import Rule
from takeover.annotation.query_language import Kind, QueryError, Unit
from takeover.app.cli.common import USAGE_EXIT, add_store_option, open_store, table, user_errors
from takeover.app.cli.data_episodes import HEADERS, SORTS, add_resolve_option, episode_row
from takeover.storage.errors import StorageError


def query_error(exc: QueryError) -> int:
    """Print a query that does not read: the one-line error, then the query with a caret under
    the column. Returns the usage exit status."""
    print(f"error: {exc}", file=sys.stderr)
    print(exc.caret(), file=sys.stderr)
    return USAGE_EXIT


def _jsonable(value: Any) -> Any:
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def facts_json(e: EpisodeFacts) -> dict[str, Any]:
    """An episode's query fields as JSON (sets as sorted lists, the day as 2026-12-01)."""
    return {f.name: _jsonable(getattr(e, f.name)) for f in FIELDS}


def fields_table() -> str:
    """Every field a query may name, its kind and what it is."""
    rows = []
    for f in FIELDS:
        kind = str(f.kind) if f.unit is Unit.PLAIN else f"{f.kind} ({f.unit})"
        if f.kind is Kind.WORD and f.words:
            kind += ": " + ", ".join(w.replace("_", "-") for w in f.words)
        also = f" (also {', '.join(f.aliases)})" if f.aliases else ""
        rows.append((f.name, kind + (", or none" if f.nullable else ""), f.doc + also))
    return table(("field", "kind", "what"), rows)


@user_errors()
def run_query(args: argparse.Namespace) -> int:
    if args.fields:
        print(fields_table())
        return 0
    if args.query is None:
        raise StorageError(
            'name a query: `takeover data query "label == success"` (--fields lists the fields)'
        )
    try:
        node = parse_query(args.query)  # before the store is opened: a typo costs nothing
    except QueryError as exc:
        return query_error(exc)
    with open_store(args) as store:
        facts = gather(store, Rule(args.resolve))
    chosen = pick(facts, node)
    ordered = sorted(
        chosen.episodes, key=lambda e: SORTS[args.sort](e.record, e.label or ""), reverse=args.reverse
    )
    if args.json:
        print(json.dumps(_json(args, chosen, ordered), indent=2))
        return 0
    if not args.stats:
        if ordered:
            print(table(HEADERS, [episode_row(e.record, e.resolution, e.heads) for e in ordered]))
            print()
        else:
            print("no episodes match")
    print(f"query           {args.query.strip() or 'all'} (labels resolved by rule {args.resolve})")
    for line in chosen.stats.lines():
        print(line)
    return 0


def _json(args: argparse.Namespace, chosen: Selection, ordered: list[EpisodeFacts]) -> dict[str, Any]:
    out: dict[str, Any] = {"query": args.query, "resolve": args.resolve}
    if not args.stats:
        out["episodes"] = [facts_json(e) for e in ordered]
    out["statistics"] = chosen.stats.as_json()
    return out


def add_query_parser(sub: Any) -> argparse.ArgumentParser:
    """Register `data query` on the `data` subparsers."""
    p = sub.add_parser(
        "query",
        help="the episodes a query matches, and their statistics",
        description="List the episodes a query matches (the columns of `data list`) and their statistics: "
        "episodes, steps, hours, outcome mix, interventions per attempt, human-step fraction, agreement. "
        "A query is an expression over episode fields, e.g. 'label in (success, near-success) and "
        'interventions >= 1 and operator == "ada" and date >= 2026-12-01\' (docs/curation.md; --fields '
        "lists the fields). `data commit TAG --query EXPR` freezes the same episodes. "
        "Reads the catalog only.",
    )
    p.add_argument("query", nargs="?", metavar="EXPR", help="the query ('' or all: every episode)")
    p.add_argument("--stats", action="store_true", help="only the statistics, not the episodes")
    p.add_argument(
        "--json", action="store_true", help="print the episodes' fields and the statistics as JSON"
    )
    p.add_argument("--fields", action="store_true", help="list the fields a query may name, and stop")
    p.add_argument("--sort", choices=sorted(SORTS), default="date", help="order of the rows (default date)")
    p.add_argument("--reverse", action="store_true", help="the other way round")
    add_resolve_option(p, "the label a query reads")
    add_store_option(p)
    p.set_defaults(func=run_query)
    return p
