"""`takeover data ...`: look at the dataset store, freeze versions, name them with tags."""

from __future__ import annotations

import argparse
from typing import Any

from takeover.annotation.curation import freeze, parse_query
from takeover.annotation.curation_session import diff_lines
from takeover.annotation.labels import Rule, version_labels
from takeover.annotation.param_files import ParamsError
from takeover.annotation.query_language import QueryError
from takeover.annotation.training_store import TrainingLabelPins
from takeover.app.cli import data_delete, data_episodes, data_transcode
from takeover.app.cli.annotate import print_training_labels, training_params
from takeover.app.cli.common import add_store_option, grace_period_s, open_store, table, user_errors, when
from takeover.app.cli.data_export import add_export_parser
from takeover.app.cli.data_pull import add_pull_parser
from takeover.app.cli.data_query import add_query_parser, query_error
from takeover.storage.child_version import parse_trim
from takeover.storage.coverage import coverage
from takeover.storage.derived import TRAINING_KEYS, TRAINING_LABELS
from takeover.storage.diff import diff_manifests, verdict
from takeover.storage.episode_file import read_timeline
from takeover.storage.errors import StorageError, UnknownTagError
from takeover.storage.fsck import fsck
from takeover.storage.store import Store
from takeover.storage.tags import unknown_tag_message


@user_errors()
def run_init(args: argparse.Namespace) -> int:
    with open_store(args, create=True) as store:
        print(f"created dataset store at {store.root}")
    return 0


@user_errors()
def run_list(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        return data_episodes.run_list(store, args)


def _query_conflicts(args: argparse.Namespace) -> None:
    """Refuse options that choose episodes too when a query chooses them."""
    given = [
        name
        for name, value in (
            ("--episodes", args.episodes),
            ("--add", args.add),
            ("--remove", args.remove),
            ("--trim", args.trim),
            ("--include-interrupted", args.include_interrupted),
        )
        if value
    ]
    if given:
        raise StorageError(
            f"--query chooses the episodes; it does not go with {', '.join(given)} "
            "(say it in the query, e.g. `end_reason != interrupted`)"
        )


@user_errors(ParamsError)
def run_commit(args: argparse.Namespace) -> int:
    if (args.new_tag is None) == (args.tag is None):
        raise StorageError("name the new version once: `data commit NEW ...` or `data commit --tag NEW ...`")
    tag = args.new_tag or args.tag
    trim = dict(parse_trim(t) for t in args.trim or ())
    if args.derived_params and not args.derived:
        raise StorageError("--derived-params gives the parameters of --derived training_labels: add that")
    videos = True if args.videos == [] else (args.videos or False)
    if args.query is not None:
        _query_conflicts(args)
        try:
            parse_query(args.query)  # before the store is opened: a typo costs nothing
        except QueryError as exc:
            return query_error(exc)
    with open_store(args) as store:
        pins = TrainingLabelPins(store, training_params(args.derived_params)) if args.derived else None
        if args.query is not None:
            digest, manifest, chosen = freeze(
                store,
                tag,
                args.query,
                message=args.message,
                rule=Rule(args.resolve),
                parent=args.parent or "",
                videos=videos,
                derived=pins,
            )
        else:
            digest, manifest = store.commit(
                tag,
                episode_ids=args.episodes,
                message=args.message,
                include_interrupted=args.include_interrupted,
                parent=args.parent or "",
                videos=videos,
                add=args.add or (),
                remove=args.remove or (),
                trim=trim,
                labels=version_labels(store, Rule(args.resolve)),
                derived=pins,
            )
        stored = store.catalog.version_storage(digest)
        dropped = not pins and (args.add or args.remove or trim) and _pins_training_labels(store, args.parent)
    if args.query is not None:
        print(f"query {chosen.query.strip() or 'all'}: {len(chosen.episodes)} episode(s) match")
    how = f"stored as its change from {args.parent}" if stored.delta else "stored whole"
    print(
        f"tagged {tag} -> version {digest}\n"
        f"{len(manifest.episodes)} episodes, {manifest.num_steps} steps ({how}, {stored.bytes} bytes)"
    )
    pinned = sum(1 for e in manifest.episodes if e.labels)
    if pinned:
        print(
            f"labels: {pinned} episode(s) take the label their annotators' revisions resolve to (rule "
            f"{args.resolve}, pinned in each entry's `labels`); the others, the operator's verdict"
        )
    if pins is not None and pins.result is not None:
        print_training_labels(f"version {tag}", pins.result, pins.created)
        print(f"pinned in each entry's `derivations`: pull keys {', '.join(TRAINING_KEYS)}")
    elif dropped:
        print(
            f"{args.parent} pins training labels, derived for its episodes; {tag} pins none "
            "(add --derived training_labels to pin those of its own episodes)"
        )
    left_out = manifest.created_from.get("left_out", {})
    if left_out.get("interrupted"):
        print(f"left out {left_out['interrupted']} interrupted attempt(s) (--include-interrupted takes them)")
    if left_out.get("deleted"):
        print(
            f"left out {left_out['deleted']} deleted episode(s) (`takeover data undelete ID` takes them back)"
        )
    return 0


def _pins_training_labels(store: Store, tag: str) -> bool:
    return any(dict(e.derivations).get(TRAINING_LABELS) for e in store.resolve(tag).manifest.episodes)


@user_errors()
def run_log(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        chain = store.lineage(args.tag)
        names: dict[str, list[str]] = {}
        for t in store.tags():
            names.setdefault(t.digest, []).append(t.name)
    for i, version in enumerate(chain):
        tags = ", ".join(names.get(version.digest, [])) or "(no tag)"
        manifest = version.manifest
        print(f"version {version.digest}  {tags}")
        print(f"  created   {when(version.created_at)}")
        if version.message:
            print(f"  message   {version.message}")
        if manifest.created_from.get("selection") == "query":
            print(f"  query     {manifest.created_from.get('query', '')}")
        print(f"  episodes  {len(manifest.episodes)} ({manifest.num_steps} steps)")
        if i + 1 < len(chain):
            print(f"  from its parent: {diff_manifests(chain[i + 1].manifest, manifest).counts()}")
        print()
    return 0


@user_errors()
def run_tags(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        tags = store.tags()
        rows = []
        for t in tags:
            manifest = store.catalog.get_version(t.digest).manifest
            rows.append(
                (t.name, t.digest[:12], len(manifest.episodes), manifest.num_steps, when(t.created_at))
            )
    if not rows:
        print("no tags")
        return 0
    print(table(("tag", "version", "episodes", "steps", "created"), rows))
    return 0


def _shown(store: Store, args: argparse.Namespace) -> tuple[str, str]:
    """('tag' or 'episode', its name): what `data show` was asked for."""
    if args.tag is not None or args.episode is not None:
        if args.name is not None:
            raise StorageError("name what to show once: `data show NAME`, `--tag TAG` or `--episode ID`")
        return ("tag", args.tag) if args.tag is not None else ("episode", args.episode)
    if args.name is None:
        raise StorageError("name a tag or an episode to show: `data show NAME`")
    name = args.name
    tags = [t.name for t in store.tags()]
    is_episode = bool(store.list_episodes(episode_ids=[name], deleted=None))
    if name in tags and is_episode:
        raise StorageError(
            f"{name!r} is both a tag and an episode id: `data show --tag {name}` shows the version, "
            f"`data show --episode {name}` the episode"
        )
    if is_episode:
        return "episode", name
    if name not in tags:
        raise UnknownTagError(f"{unknown_tag_message(name, tags[::-1])} (and no episode has that id)")
    return "tag", name


@user_errors()
def run_show(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        kind, name = _shown(store, args)
        if kind == "episode":
            return data_episodes.show_episode(store, name, args)
        version = store.resolve(name)
        manifest = version.manifest
        if args.json:
            print(manifest.canonical_json())
            return 0
        timelines = []
        for e in manifest.episodes:
            with store.open_blob(e.digest) as f:
                timelines.append(read_timeline(f))
    cameras = coverage([e.episode_id for e in manifest.episodes], timelines)
    print(f"tag       {name}")
    print(f"version   {version.digest}")
    print(f"created   {when(version.created_at)}")
    if version.message:
        print(f"message   {version.message}")
    if manifest.created_from.get("selection") == "query":
        print(f"query     {manifest.created_from.get('query', '')}")
    print(f"episodes  {len(manifest.episodes)} ({manifest.num_steps} steps)")
    for i, cam in enumerate(cameras.values()):
        print(f"{'cameras' if i == 0 else '':<10}{cam.line()}")
    pins = [dict(e.derivations) for e in manifest.episodes]
    for i, pinned in enumerate(sorted({n for p in pins for n in p})):
        count = sum(pinned in p for p in pins)
        print(f"{'derived' if i == 0 else '':<10}{pinned}: pinned for {count} of {len(pins)} episodes")
    print()
    rows = [
        (
            e.episode_id,
            e.num_steps if e.steps is None else f"{e.length} ({e.start}:{e.stop} of {e.num_steps})",
            verdict(e),
            e.labels or "verdict",
            e.digest[:12],
        )
        for e in manifest.episodes
    ]
    print(table(("id", "steps", "label", "from", "file"), rows))
    return 0


@user_errors()
def run_diff(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        first, second = store.resolve(args.first), store.resolve(args.second)
    change = diff_manifests(first.manifest, second.manifest)
    print(f"{args.first} ({first.digest[:12]}) -> {args.second} ({second.digest[:12]})")
    for line in diff_lines(change, same=first.digest == second.digest):
        print(line)
    return 0


@user_errors()
def run_fsck(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        print(f"checking {store.root} ...", flush=True)
        report = fsck(store, verify=not args.no_verify, grace_s=grace_period_s())
    for note in report.notes:
        print(note)
    for problem in report.problems:
        print(problem.line())
    print(report.summary())
    return 0 if report.clean else 1


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `data` and its subcommands on an argparse subparsers object."""
    data = subparsers.add_parser(
        "data",
        help="inspect the dataset store, freeze versions and tag them",
        description="Inspect the dataset store, freeze immutable versions and name them with tags.",
    )
    sub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")

    p = sub.add_parser(
        "init", help="create an empty dataset store", description="Create an empty dataset store."
    )
    add_store_option(p)
    p.set_defaults(func=run_init)

    p = sub.add_parser(
        "list",
        help="list recorded episodes with the label that counts",
        description="List the episodes in the store, oldest first: when, task, operator, length, takeovers, "
        "and one label (resolved from its annotators' revisions) with its source: lead, majority, annotator, "
        "operator, or station (only the station's success flag). agree: how many annotators give that "
        "outcome, of how many.",
    )
    data_episodes.add_list_options(p)
    add_store_option(p)
    p.set_defaults(func=run_list)

    p = sub.add_parser(
        "commit",
        help="freeze episodes as a version and tag it",
        description="Freeze episodes (all but interrupted attempts by default) as an immutable version and "
        "name it with a new tag, or make a version from a parent (--parent) with episodes added, removed "
        "and trimmed, or freeze the episodes a query matches (--query). Deleted episodes are never taken. "
        "Tags are never moved or reused.",
    )
    p.add_argument("new_tag", nargs="?", metavar="NEW", help="new tag name for the version")
    p.add_argument("--tag", metavar="NEW", help="the same as NEW")
    p.add_argument(
        "--episodes",
        nargs="+",
        metavar="ID",
        help="episode ids to include (default: all but the interrupted ones)",
    )
    p.add_argument(
        "--include-interrupted",
        action="store_true",
        help="without --episodes: take interrupted attempts too (cut short with nobody to say how they went)",
    )
    p.add_argument(
        "--query",
        metavar="EXPR",
        help="the episodes this query matches (`data query` shows them; docs/curation.md), recorded "
        "in the version; each one's label is resolved with --resolve, as the query read it",
    )
    p.add_argument("--message", "-m", default="", metavar="M", help="what this version is for")
    p.add_argument(
        "--parent",
        metavar="TAG",
        help="the version this one is made from (its lineage: `data log`); with --add, --remove or "
        "--trim, the version changed by them (else the selection is made as without it)",
    )
    p.add_argument("--add", nargs="+", metavar="ID", help="episodes to add to the parent's")
    p.add_argument("--remove", nargs="+", metavar="ID", help="episodes of the parent to leave out")
    p.add_argument(
        "--trim",
        nargs="+",
        metavar="ID:START:STOP",
        help="take only steps START to STOP-1 of an episode (no data is rewritten; 0:N is the whole)",
    )
    p.add_argument(
        "--videos",
        nargs="*",
        metavar="CAMERA",
        help="pin the transcoded videos of these cameras (none named: every transcoded camera); "
        "refused if a stream is not transcoded (`data transcode`)",
    )
    p.add_argument(
        "--derived",
        nargs="+",
        choices=[TRAINING_LABELS],
        metavar="NAME",
        help="derive and pin, per episode of the version, its training labels (training_labels: "
        "derived for the version's episodes as one batch, with the labels the version gives them; "
        "a batch derived before is not computed again), so `pull` offers them as keys and the "
        "exports write them",
    )
    p.add_argument(
        "--derived-params",
        metavar="FILE.toml",
        help="with --derived: training-label parameters (docs/training_labels.md; default: the defaults)",
    )
    data_episodes.add_resolve_option(p, "each episode's label")
    add_store_option(p)
    p.set_defaults(func=run_commit)

    p = sub.add_parser("tags", help="list tags and their versions", description="List tags, oldest first.")
    add_store_option(p)
    p.set_defaults(func=run_tags)

    p = sub.add_parser(
        "show",
        help="show a version (by tag) or an episode",
        description="Show the version a tag names, or an episode: its metadata, events, labels and their "
        "history, the agreement between its annotators and the label that counts. A name that is both a "
        "tag and an episode id is refused: say which with --tag or --episode.",
    )
    p.add_argument("name", nargs="?", metavar="TAG|EPISODE")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--tag", metavar="TAG", help="the version this tag names")
    which.add_argument("--episode", metavar="ID", help="this episode")
    p.add_argument(
        "--json", action="store_true", help="print the manifest (of an episode: all of it) as JSON"
    )
    data_episodes.add_resolve_option(p, "an episode's label")
    add_store_option(p)
    p.set_defaults(func=run_show)

    p = sub.add_parser(
        "diff",
        help="what changed between two versions",
        description="List the episodes added, removed, relabelled and re-derived from version FIRST to "
        "version SECOND (tags), and the totals that changed. Reads the catalog only.",
    )
    p.add_argument("first", metavar="FIRST")
    p.add_argument("second", metavar="SECOND")
    add_store_option(p)
    p.set_defaults(func=run_diff)

    p = sub.add_parser(
        "log",
        help="the lineage of a version",
        description="Show the version TAG names, then its parent, its parent's parent, ... with what "
        "changed at each step.",
    )
    p.add_argument("tag", metavar="TAG")
    add_store_option(p)
    p.set_defaults(func=run_log)

    p = sub.add_parser(
        "fsck",
        help="verify every blob, manifest and reference",
        description="Verify the store: every blob hashes to its digest, every version's manifest reads "
        "and hashes to its digest, every episode a version lists is in the catalog with its data, every "
        "tag names a version. Prints each problem with what to do about it; exit 1 if there is any. "
        "Changes nothing.",
    )
    p.add_argument(
        "--no-verify", action="store_true", help="see that each blob is there without re-hashing it"
    )
    add_store_option(p)
    p.set_defaults(func=run_fsck)
    add_query_parser(sub)
    data_transcode.add_parser(sub)
    add_pull_parser(sub)
    add_export_parser(sub)
    data_delete.add_delete(sub)
    data_delete.add_undelete(sub)
    data_delete.add_gc(sub)
    return data
