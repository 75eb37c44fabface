"""`takeover review`: the review screen, where annotators scrub recorded attempts and label them.

The filters given here are where the screen's list starts (each can be changed there). The
annotator is ``--annotator``, else the configuration's ``[operator] name``, else the login name;
labels are written as that annotator's revisions (``--lead``: in the lead role). See docs/review.md.
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import sys

from takeover.annotation.labels import Rule
from takeover.annotation.params import ParamsError, load_params
from takeover.annotation.review_model import COLUMN_NAMES, ReviewFilter
from takeover.app.cli.common import add_store_option, error, open_store, store_root
from takeover.app.cli.data_episodes import add_resolve_option, label_filter
from takeover.app.cli.label import configured
from takeover.storage.errors import StorageError
from takeover.storage.store import Store


def _day(text: str) -> float:
    """YYYY-MM-DD -> the local midnight that starts that day."""
    try:
        day = datetime.date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"a date is YYYY-MM-DD, got {text!r}") from None
    return datetime.datetime(day.year, day.month, day.day).timestamp()


def review_filter(args: argparse.Namespace) -> ReviewFilter:
    """The list's first filters, from the command line."""
    return ReviewFilter(
        task=args.task,
        operator=args.operator,
        station=args.station,
        policy=args.policy,
        label=args.label,
        annotator=args.labelled_by,
        intervention={"yes": True, "no": False}.get(args.interventions or ""),
        since=args.since,
        until=args.until + 86400.0 if args.until is not None else None,
        disagreement=args.disagreements,
        todo=args.todo,
    )


def cmd_review(args: argparse.Namespace) -> int:
    from takeover.app.gui.console.app import display_available
    from takeover.app.gui.review.app import NO_DISPLAY_EXIT_CODE, NO_DISPLAY_MESSAGE, run_review
    from takeover.app.gui.review.window import ReviewOptions

    if not display_available():
        print(NO_DISPLAY_MESSAGE, file=sys.stderr)
        return NO_DISPLAY_EXIT_CODE
    try:
        vocabulary, operator = configured()
        smoothing = load_params(args.smoothing_params) if args.smoothing_params else None
    except (StorageError, ParamsError) as exc:
        return error(str(exc))
    annotator = args.annotator or operator or getpass.getuser()

    def opener() -> Store:
        return open_store(args)

    options = ReviewOptions(
        open_store=opener,
        annotator=annotator,
        role="lead" if args.lead else "annotator",
        vocabulary=vocabulary,
        rule=Rule(args.resolve),
        tag=args.tag,
        filter=review_filter(args),
        sort=args.sort,
        smoothing=smoothing,
        title=f"Takeover review — {store_root(args)}",
    )
    return run_review(options)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "review",
        help="the review screen: scrub recorded attempts across all cameras and label them by keyboard",
        description="Open the review screen on the store's episodes (those of --tag only, if given). "
        "Keys 1 / 2 / 3 label the episode success / near-success / failure and go to the next; "
        "J / K next / previous; arrows step, Shift+arrows a second; Space plays. See docs/review.md.",
    )
    p.add_argument("--tag", metavar="T", help="only the episodes of this version")
    p.add_argument("--task", metavar="TEXT", help="start with the episodes of this task")
    p.add_argument("--operator", metavar="NAME", help="start with the episodes this operator recorded")
    p.add_argument("--station", metavar="NAME", help="start with the episodes of this station")
    p.add_argument("--policy", metavar="ID", help="start with the episodes of this policy")
    p.add_argument(
        "--label",
        type=label_filter,
        metavar="L",
        help="start with the episodes whose label is L: success, near-success, failure or none",
    )
    p.add_argument("--labelled-by", metavar="NAME", help="start with the episodes NAME has labelled")
    p.add_argument(
        "--interventions",
        choices=("yes", "no"),
        help="start with the attempts with (yes) or without (no) a takeover",
    )
    p.add_argument(
        "--since", type=_day, metavar="YYYY-MM-DD", help="start with the episodes from this day on"
    )
    p.add_argument("--until", type=_day, metavar="YYYY-MM-DD", help="... up to this day (included)")
    p.add_argument(
        "--disagreements",
        action="store_true",
        help="start with the disagreement queue (annotators disagree and no lead has settled it)",
    )
    p.add_argument("--todo", action="store_true", help="start with the episodes you have not labelled yet")
    p.add_argument(
        "--sort", choices=COLUMN_NAMES, default="date", help="the column the list is sorted by (default date)"
    )
    p.add_argument(
        "--annotator",
        metavar="NAME",
        help="who labels (default: [operator] name of the configuration, else the login name)",
    )
    p.add_argument(
        "--lead", action="store_true", help="label as the data lead (a lead's word settles a disagreement)"
    )
    p.add_argument(
        "--smoothing-params",
        metavar="FILE.toml",
        help="the boundary smoothing shown beside the raw hand-overs (default parameters if not given)",
    )
    add_resolve_option(p, "the label shown")
    add_store_option(p)
    p.set_defaults(func=cmd_review)
