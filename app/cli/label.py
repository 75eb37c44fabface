"""`takeover label EPISODE ... --outcome ...`: label episodes, each change a new revision.

Raw recorded data is never touched: every call appends one revision per episode
(:mod:`takeover.annotation.labels`), whose parent is the annotator's own newest revision of the
episode, else the episode's newest. The failure categories come from the configuration
(``[labels] failure_categories``); the annotator from ``--annotator``, else ``[operator] name``,
else the login name.
"""

from __future__ import annotations

import argparse
import getpass

from takeover.annotation.curation import label_source
from takeover.annotation.labels import (
    SUCCESS_QUALITIES,
    Resolution,
    Rule,
    Vocabulary,
    label_text,
    parse_outcome,
    relabel_many,
    resolve_many,
)
from takeover.app.cli.common import add_store_option, open_store, user_errors, when
from takeover.storage.errors import StorageError
from takeover.storage.label_revisions import Label, LabelRevision


def configured() -> tuple[Vocabulary, str]:
    """The configured failure categories, and the configured operator's name ('' for none)."""
    from takeover.app.runtime.config import ConfigError, load_config
    from takeover.app.runtime.config_file import config_file_for

    try:
        config = load_config(config_file_for(None))
    except ConfigError as exc:
        raise StorageError(f"cannot read the configuration for the labels: {exc}") from None
    return config.labels.vocabulary(), config.operator.name


def revision_text(r: LabelRevision) -> str:
    """One revision on one line: who, when, what it edits, and its label."""
    edits = f"edits {r.parent_id}" if r.parent_id is not None else "the first"
    text = f"revision {r.id} ({edits}) by {r.annotator} as {r.role}, {when(r.created_at)}: {label_text(r)}"
    if r.tags:
        text += f"; tags {', '.join(r.tags)}"
    if r.notes:
        text += f"; notes: {r.notes}"
    return text


source_of = label_source


def resolution_text(res: Resolution, operator_outcome: str) -> str:
    """The label that counts and why, e.g. 'failure: majority, 2 of 3 annotators (revisions 4, 9)'."""
    text = label_text(res.label)  # the newest revision it rests on, whose outcome it is
    ids = ", ".join(str(i) for i in res.revisions)
    source = source_of(res, operator_outcome)
    if source == "lead":
        return f"{text}: the lead's word (revision {ids})"
    if source == "majority":
        tie = ": a tie, which goes to the more cautious outcome" if res.tie else ""
        return f"{text}: majority, {len(res.revisions)} of {res.annotators} annotators{tie} (revisions {ids})"
    if source == "station":
        return f"{text}: the station's success flag (revision {ids})"
    return f"{text}: the {source}'s (revision {ids})"


@user_errors()
def run_label(args: argparse.Namespace) -> int:
    vocabulary, operator = configured()
    annotator = args.annotator or operator or getpass.getuser()
    label = Label(
        outcome=parse_outcome(args.outcome),
        quality=args.quality.replace("-", "_") if args.quality else None,
        failure_category=args.category,
        progress=args.progress,
        notes=args.note,
        tags=tuple(dict.fromkeys(args.tag or ())),
    )
    role = "lead" if args.lead else "annotator"
    with open_store(args) as store:
        made = relabel_many(
            store, args.episodes, label, annotator=annotator, role=role, vocabulary=vocabulary
        )
        ids = [r.episode_id for r in made]
        now = resolve_many(store, ids, Rule.LEAD)
        verdicts = {e.episode_id: e.outcome for e in store.list_episodes(episode_ids=ids, deleted=None)}
    for r in made:
        print(f"{r.episode_id}: {revision_text(r)}")
        counts = resolution_text(now[r.episode_id], verdicts[r.episode_id])
        print(f"  the label that counts (rule lead): {counts}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "label",
        help="label episodes: outcome, quality or failure category, progress, notes, tags",
        description="Label episodes. Each label is a new revision by its annotator (the raw data is never "
        "touched); `takeover data show EPISODE` shows the history, the agreement between annotators and "
        "the label that counts. See docs/labels.md.",
    )
    p.add_argument("episodes", nargs="+", metavar="EPISODE", help="episode ids")
    p.add_argument(
        "--outcome",
        required=True,
        metavar="OUTCOME",
        help="success, near-success (or near_success) or failure",
    )
    p.add_argument(
        "--quality",
        choices=[*SUCCESS_QUALITIES, *(q.replace("_", "-") for q in SUCCESS_QUALITIES if "_" in q)],
        metavar="Q",
        help="for a success: clean, side-effects (something else was disturbed) or suboptimal",
    )
    p.add_argument(
        "--category",
        metavar="C",
        help="for a failure: why ([labels] failure_categories of the configuration)",
    )
    p.add_argument("--progress", type=int, metavar="N", help="how far the attempt got, 0 to 100 (%%)")
    p.add_argument("--note", default="", metavar="TEXT", help="what an annotator should know")
    p.add_argument("--tag", nargs="+", action="extend", metavar="T", help="tags (words without spaces)")
    p.add_argument(
        "--annotator",
        metavar="NAME",
        help="who labels (default: [operator] name of the configuration, else the login name)",
    )
    p.add_argument(
        "--lead",
        action="store_true",
        help="label as the data lead: under the default resolution rule the newest lead's word counts",
    )
    add_store_option(p)
    p.set_defaults(func=run_label)
