"""`takeover data list` and `takeover data show EPISODE`: episodes with the label that counts.

Each episode shows one label, resolved from its annotators' newest revisions by a rule
(``--resolve``, default ``lead``; :mod:`takeover.annotation.labels`), and where it comes from:
``lead``, ``majority``, ``annotator``, ``operator`` (the verdict at the end of the attempt) or
``station`` (the operator gave none; the station's success flag stands).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from takeover.annotation.labels import (
    CAUTION,
    Resolution,
    Rule,
    agreement,
    disagrees,
    parse_outcome,
    resolve,
    shown,
    voters,
)
from takeover.app.cli.common import table, when
from takeover.app.cli.label import label_text, resolution_text, source_of
from takeover.storage.catalog import EpisodeRecord
from takeover.storage.errors import InvalidLabelError
from takeover.storage.label_revisions import LabelRevision
from takeover.storage.schema import END_REASONS, Event
from takeover.storage.store import Store

SORTS: dict[str, Callable[[EpisodeRecord, str], tuple[Any, ...]]] = {
    "date": lambda e, _: (e.started_at, e.episode_id),
    "operator": lambda e, _: (e.operator, e.started_at, e.episode_id),
    "duration": lambda e, _: (e.ended_at - e.started_at, e.episode_id),
    "label": lambda e, label: (CAUTION.index(label) if label in CAUTION else len(CAUTION), e.started_at),
    "interventions": lambda e, _: (e.num_takeovers, e.started_at, e.episode_id),
}
"""``--sort`` keys: (record, resolved outcome or '') -> sort key. 'label' puts the most cautious
first (failure, near-success, success, unlabelled)."""


def label_filter(text: str) -> str:
    """An argparse type for a label filter: an outcome as people type it, or 'none' ('': unlabelled)."""
    if text.strip().lower() == "none":
        return ""
    try:
        return parse_outcome(text)
    except InvalidLabelError as exc:
        raise argparse.ArgumentTypeError(f"{exc}, or none") from None


def list_episodes(store: Store, args: argparse.Namespace) -> tuple[list[tuple[Any, ...]], int]:
    """The rows `data list` prints, filtered and sorted, and how many deleted episodes are hidden."""
    rule = Rule(args.resolve)
    records = store.list_episodes(task=args.task, operator=args.operator, station=args.station)
    heads = store.labels.heads([r.episode_id for r in records]) if records else {}
    deleted = len(store.catalog.deletions())
    picked = []
    for e in records:
        h = heads.get(e.episode_id, [])
        res = resolve(h, rule)
        outcome = res.outcome if res is not None else ""
        if args.label is not None and outcome != args.label:
            continue
        if args.annotator is not None and args.annotator not in {r.annotator for r in h}:
            continue
        if args.disagreements and not disagrees(h):
            continue
        picked.append((e, res, h))
    picked.sort(key=lambda t: SORTS[args.sort](t[0], t[1].outcome if t[1] else ""), reverse=args.reverse)
    return [episode_row(e, res, h) for e, res, h in picked], deleted


def episode_row(e: EpisodeRecord, res: Resolution | None, heads: Sequence[LabelRevision]) -> tuple[Any, ...]:
    """An episode as a row of `data list` (the columns of :data:`HEADERS`)."""
    voting = voters(heads)
    most = round(agreement(voting) * len(voting))
    return (
        e.episode_id,
        when(e.started_at)[:16],
        e.task,
        e.operator,
        "-" if e.seed is None else e.seed,
        e.num_steps,
        f"{e.ended_at - e.started_at:.1f}",
        e.num_takeovers,
        shown(res.outcome) if res else "-",
        source_of(res, e.outcome) if res else "-",
        f"{most}/{len(voting)}" if voting else "-",
        e.end_reason or "-",
        f"cut {when(e.cut_at)}" if e.cut_at is not None else "-",
    )


HEADERS = (
    "id",
    "date",
    "task",
    "operator",
    "seed",
    "steps",
    "duration",
    "takeovers",
    "label",
    "source",
    "agree",
    "ended",
    "recovered",
)


def run_list(store: Store, args: argparse.Namespace) -> int:
    rows, deleted = list_episodes(store, args)
    if getattr(args, "ids", False):  # for scripts: `takeover label $(takeover data list --ids ...)`
        for row in rows:
            print(row[0])
        return 0
    hidden = f"{deleted} deleted episode(s) not shown (`takeover data undelete ID` takes them back)"
    if not rows:
        print("no episodes" + (" match" if _filtered(args) else "") + (f"; {hidden}" if deleted else ""))
        return 0
    print(table(HEADERS, rows))
    if deleted:
        print(hidden)
    return 0


def _filtered(args: argparse.Namespace) -> bool:
    named = (args.task, args.operator, args.station, args.label, args.annotator)
    return any(v is not None for v in named) or args.disagreements


def add_list_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", metavar="TEXT", help="only the episodes of this task")
    p.add_argument("--operator", metavar="NAME", help="only the episodes this operator recorded")
    p.add_argument("--station", metavar="NAME", help="only the episodes recorded at this station")
    p.add_argument(
        "--label",
        type=label_filter,
        metavar="L",
        help="only the episodes whose label is L: success, near-success, failure, or none (unlabelled)",
    )
    p.add_argument("--annotator", metavar="NAME", help="only the episodes NAME has labelled")
    p.add_argument(
        "--disagreements",
        action="store_true",
        help="only the episodes whose annotators disagree with no newer lead's word (the review queue)",
    )
    p.add_argument(
        "--sort",
        choices=sorted(SORTS),
        default="date",
        help="order of the rows (default date; label: failure first); --reverse turns it round",
    )
    p.add_argument(
        "--reverse", action="store_true", help="the other way round (e.g. most interventions first)"
    )
    add_resolve_option(p, "the label shown")
    p.add_argument("--ids", action="store_true", help="print only the ids, one per line (for scripts)")


def add_resolve_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--resolve",
        choices=[r.value for r in Rule],
        default=Rule.LEAD.value,
        help=f"how {what} is chosen when annotators disagree: lead (default: the newest lead's word, "
        "else the majority) or majority (a tie goes to the more cautious outcome)",
    )


# -- one episode --------------------------------------------------------------------------------
def show_episode(store: Store, episode_id: str, args: argparse.Namespace) -> int:
    e = store.get_episode(episode_id)
    events = store.catalog.get_events(episode_id)
    history = store.labels.history(episode_id)
    heads = store.labels.heads([episode_id]).get(episode_id, [])
    deletion = store.catalog.deletions().get(episode_id)
    res = resolve(heads, Rule(args.resolve))
    if args.json:
        print(json.dumps(_episode_json(e, events, history, heads, res, deletion is not None), indent=2))
        return 0
    fields = [
        ("episode", e.episode_id),
        ("task", e.task),
        ("station", f"{e.station} ({e.robot})"),
        ("operator", e.operator),
        ("policy", e.policy_id),
        (
            "started",
            f"{when(e.started_at)}, {e.ended_at - e.started_at:.1f} s, "
            f"{e.num_steps} steps at {e.rate_hz:g} Hz",
        ),
        ("seed", "-" if e.seed is None else e.seed),
        ("ended", f"{e.end_reason} ({END_REASONS.get(e.end_reason, '')})" if e.end_reason else "-"),
        ("verdict", f"{e.outcome or '-'} (station's flag: {'-' if e.success is None else e.success})"),
        ("note", e.note or "-"),
        ("takeovers", f"{e.num_takeovers}, hand-backs {e.num_handbacks}"),
        ("file", e.blob_digest),
    ]
    if e.cut_at is not None:
        fields.append(("recovered", f"cut at {when(e.cut_at)}"))
    if deletion is not None:
        fields.append(("deleted", f"{when(deletion.deleted_at)}: {deletion.reason or 'no reason given'}"))
    for name, value in fields:
        print(f"{name:<10}{value}")
    print()
    print(f"label     {resolution_text(res, e.outcome) if res else 'none (no verdict, no revision)'}")
    print(
        f"          rule {args.resolve}; {len(voters(heads))} voting annotator(s), "
        f"agreement {agreement(heads):.2f}" + ("; in the disagreement queue" if disagrees(heads) else "")
    )
    if history:
        print()
        print("label history (oldest first; * = the annotator's current revision)")
        current = {h.id for h in heads}
        rows = [
            (
                f"{r.id}{'*' if r.id in current else ''}",
                "-" if r.parent_id is None else r.parent_id,
                r.annotator,
                r.role,
                when(r.created_at),
                label_text(r, progress=False),
                "-" if r.progress is None else f"{r.progress} %",
                ", ".join(r.tags) or "-",
                r.notes or "-",
            )
            for r in history
        ]
        print(
            table(("rev", "parent", "annotator", "role", "time", "label", "progress", "tags", "notes"), rows)
        )
    if events:
        print()
        t0 = events[0].t
        steps = [(ev.step, f"{ev.t - t0:.3f}", str(ev.kind), ev.reason or "-") for ev in events]
        print(table(("step", "t (s)", "event", "reason"), steps))
    edits = store.boundaries.history(episode_id)
    if edits:
        print()
        print(
            "boundary edits (oldest first; the newest of each boundary counts; "
            "the recorded control source is kept)"
        )
        rows_b = [
            (
                b.id,
                "-" if b.parent_id is None else b.parent_id,
                f"{b.kind} at {b.recorded_step}",
                b.step,
                "-" if b.pre_window_start is None else f"{b.pre_window_start}..{b.step - 1}",
                b.annotator,
                b.role,
                when(b.created_at),
                b.notes or "-",
            )
            for b in edits
        ]
        print(
            table(
                (
                    "edit",
                    "parent",
                    "boundary",
                    "counts from",
                    "pre-window",
                    "annotator",
                    "role",
                    "time",
                    "notes",
                ),
                rows_b,
            )
        )
    return 0


def _episode_json(
    e: EpisodeRecord,
    events: list[Event],
    history: list[LabelRevision],
    heads: list[LabelRevision],
    res: Resolution | None,
    deleted: bool,
) -> dict[str, Any]:
    return {
        "episode": {**asdict(e), "deleted": deleted},
        "events": [{**asdict(ev), "kind": str(ev.kind)} for ev in events],
        "labels": [{**asdict(r), "tags": list(r.tags)} for r in history],
        "agreement": agreement(heads),
        "disagreement": disagrees(heads),
        "resolved": None
        if res is None
        else {
            "outcome": res.outcome,
            "rule": str(res.rule),
            "source": source_of(res, e.outcome),
            "revisions": list(res.revisions),
            "tie": res.tie,
        },
    }
