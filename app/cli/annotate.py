"""`takeover annotate ...`: derived annotations of recorded episodes (boundary smoothing, training
labels)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from takeover.annotation.params import ParamsError, SmoothingParams, load_params
from takeover.app.cli.common import add_store_option, open_store, user_errors
from takeover.storage.derived import TRAINING_KEYS
from takeover.storage.errors import UnknownTagError
from takeover.storage.store import Store

if TYPE_CHECKING:
    from takeover.annotation.training_labels import TrainingLabels
    from takeover.annotation.training_params import TrainingLabelParams


class AnnotateError(Exception):
    """A mistake in the command line that a person can fix."""


def _params(args: argparse.Namespace) -> SmoothingParams:
    return load_params(args.params) if args.params else SmoothingParams()


def _selected(store: Store, args: argparse.Namespace) -> list[str]:
    if args.tag:
        return [e.episode_id for e in store.episodes_in(args.tag)]
    if args.episodes:
        ids = list(dict.fromkeys(args.episodes))
        for i in ids:
            store.get_episode(i)  # unknown ids fail here, before any work
        return ids
    return [e.episode_id for e in store.list_episodes()]


@user_errors(ParamsError, AnnotateError, IndexError, ValueError)
def run_smooth(args: argparse.Namespace) -> int:
    from takeover.annotation.derivations import smooth_and_store

    params = _params(args)
    with open_store(args) as store:
        ids = _selected(store, args)
        if not ids:
            print("no episodes to smooth")
            return 0
        for n, episode_id in enumerate(ids, 1):
            record, created, sm = smooth_and_store(store, episode_id, params)
            removed = sum(c.removed_s for c in sm.changes)
            blended = sum(len(c.blended_steps) for c in sm.changes)
            state = "stored" if created else "already stored"
            print(
                f"[{n}/{len(ids)}] {episode_id}: {len(sm.changes)} boundaries, "
                f"{sm.num_raw_steps - sm.num_steps} steps removed ({removed:.2f} s), "
                f"{blended} actions blended, {len(sm.dropped_frames)} frames dropped; "
                f"{state} as {record.digest[:12]}",
                flush=True,
            )
    return 0


@user_errors(ParamsError, AnnotateError, IndexError, ValueError)
def run_plot_boundary(args: argparse.Namespace) -> int:
    import cv2

    from takeover.annotation.derivations import load_smoothed
    from takeover.annotation.plot import render_boundary
    from takeover.annotation.smoothing import smooth_episode

    out = Path(args.out).expanduser()
    if out.suffix.lower() != ".png":
        raise AnnotateError(f"--out must name a .png file, got {out}")
    if not out.parent.is_dir():
        raise AnnotateError(f"cannot write {out}: folder {out.parent} does not exist")
    params = _params(args)
    with open_store(args) as store:
        raw = store.read_episode(args.episode_id)
        sm = load_smoothed(store, args.episode_id, params)
        source = "stored derivation"
        if sm is None:
            sm, source = smooth_episode(raw, params), "computed (not stored; run `takeover annotate smooth`)"
    if not sm.changes:
        raise AnnotateError(f"episode {args.episode_id} has no takeover or hand-back: nothing to plot")
    img = render_boundary(raw, sm, args.boundary)
    if not cv2.imwrite(str(out), img):
        raise AnnotateError(f"could not write {out}")
    ch = sm.changes[args.boundary]
    print(f"wrote {out}: {ch.kind} at step {ch.raw_step} of {args.episode_id} ({source})")
    return 0


def _operator_outcome(outcome: str, success: bool | None) -> str:
    """The operator's verdict if given, else the station's success flag."""
    if outcome in ("success", "near_success", "failure"):
        return outcome
    return "success" if success else "failure"


def _labelled_batch(store: Store, targets: list[str]) -> tuple[str, dict[str, str]]:
    """What ``targets`` names (a tag, or episode ids) and the outcome label of each episode: the
    label the version froze (its resolved label), or for episodes named the label that counts now
    (their revisions resolved by the default rule), else the station's flag."""
    from takeover.annotation.labels import resolve_many

    if len(targets) == 1:
        try:
            entries = store.episodes_in(targets[0])
        except UnknownTagError:
            pass
        else:
            return f"version {targets[0]}", {
                e.episode_id: _operator_outcome(e.outcome, e.success) for e in entries
            }
    labels: dict[str, str] = {}
    for episode_id in dict.fromkeys(targets):
        record = store.get_episode(episode_id)  # unknown ids fail here, before any work
        labels[episode_id] = _operator_outcome(record.outcome, record.success)
    for episode_id, resolution in resolve_many(store, list(labels)).items():
        labels[episode_id] = resolution.outcome
    return f"{len(labels)} episodes", labels


def print_training_labels(what: str, result: TrainingLabels, created: int) -> None:
    """What a batch of derived training labels holds: classes, the indicator and its figures."""
    from takeover.annotation.training_labels import ControlClass

    params = result.params
    steps = sum(e.control_class.size for e in result.episodes)
    outcomes = {
        o: sum(e.outcome == o for e in result.episodes) for o in ("success", "near_success", "failure")
    }
    print(
        f"training labels of {what}: {len(result.episodes)} episodes, {steps} steps "
        f"({', '.join(f'{n} {o}' for o, n in outcomes.items())}); parameters {params.digest()[:12]}"
    )
    for cls in ControlClass:
        n = sum(int((e.control_class == cls).sum()) for e in result.episodes)
        print(f"  {cls.name.lower():<17} {n:>8} steps  {100 * n / steps:5.1f} %")
    sources = ", ".join(f"{name} ({n} episodes)" for name, n in result.value_sources.items())
    print(
        f"improvement: {100 * result.positive_fraction:.1f} % of {result.non_human_steps} non-human steps "
        f"positive (target {100 * params.positive_fraction:.1f} %), threshold {result.threshold:.6g} on the "
        f"advantage; human steps positive; value estimate: {sources}; horizon {result.horizon_steps} steps"
    )
    state = f"stored for {created} episodes" if created else "already stored"
    print(f"{state} (derivation training_labels)")


def training_params(path: str | None) -> TrainingLabelParams:
    from takeover.annotation.training_params import TrainingLabelParams

    return TrainingLabelParams.load(path) if path else TrainingLabelParams()


@user_errors(ParamsError, AnnotateError, IndexError, ValueError)
def run_derive_labels(args: argparse.Namespace) -> int:
    from takeover.annotation.training_store import TrainingLabelPins, derive_and_store

    params = training_params(args.params)
    with open_store(args) as store:
        if args.commit is not None:
            if len(args.targets) != 1:
                raise AnnotateError("--commit freezes one version's episodes again: name one tag")
            pins = TrainingLabelPins(store, params)
            digest, manifest = store.pin_derived(args.commit, args.targets[0], pins, args.message)
            assert pins.result is not None
            result, created, what = pins.result, pins.created, f"version {args.targets[0]}"
        else:
            what, labels = _labelled_batch(store, args.targets)
            if not labels:
                raise AnnotateError(f"{what} holds no episodes")
            result, created = derive_and_store(store, list(labels), params, labels)
    print_training_labels(what, result, created)
    if args.commit is not None:
        print(
            f"tagged {args.commit} -> version {digest}: the {len(manifest.episodes)} episodes of "
            f"{args.targets[0]}, each pinning its training labels (pull keys {', '.join(TRAINING_KEYS)})"
        )
    return 0


@user_errors(AnnotateError)
def run_boundary(args: argparse.Namespace) -> int:
    import getpass

    from takeover.annotation.boundary_edits import KEEP, edit_boundary, effective_boundaries
    from takeover.app.cli.label import configured

    editing = args.move_to is not None or args.pre_window_from is not None or args.default_window
    chosen = [k for k in ("takeover", "handback") if getattr(args, k) is not None]
    if editing and not chosen:
        raise AnnotateError(
            "say which boundary to edit: --takeover STEP or --handback STEP (its recorded step)"
        )
    with open_store(args) as store:
        episode = store.read_episode(args.episode_id)
        if editing:
            kind = chosen[0]
            window: int | str | None = KEEP
            if args.default_window:
                window = None
            elif args.pre_window_from is not None:
                window = args.pre_window_from
            annotator = args.annotator or configured()[1] or getpass.getuser()
            edit = edit_boundary(
                store,
                args.episode_id,
                kind,
                getattr(args, kind),
                step=args.move_to,
                pre_window_start=window,  # type: ignore[arg-type]
                annotator=annotator,
                role="lead" if args.lead else "annotator",
                notes=args.note,
                episode=episode,
            )
            said = _boundary_text(edit.kind, edit.recorded_step, edit.step, edit.pre_window_start)
            print(f"edit {edit.id} by {edit.annotator} as {edit.role}: {said}")
        edits = store.boundaries.current([args.episode_id]).get(args.episode_id, [])
        history = store.boundaries.history(args.episode_id)
    bounds = effective_boundaries(episode, edits)
    if not bounds:
        print(f"episode {args.episode_id} has no takeover or hand-back")
        return 0
    print(f"episode {args.episode_id}: {episode.num_steps} steps")
    for b in bounds:
        who = f"  (edit {b.edit.id} by {b.edit.annotator})" if b.edit else "  (as recorded)"
        print("  " + _boundary_text(b.kind.value, b.recorded_step, b.step, b.pre_window_start) + who)
    if history and not editing:
        print(f"{len(history)} edit(s) in all; the newest of each boundary counts")
    return 0


def _boundary_text(kind: str, recorded_step: int, step: int, window: int | None) -> str:
    where = f"recorded at {recorded_step}" + (f", counts from {step}" if step != recorded_step else "")
    if kind == "takeover":
        where += (
            f"; pre-intervention window {window}..{step - 1}" if window is not None else "; default window"
        )
    return f"{kind} {where}"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "annotate",
        help="derive annotations of recorded episodes (boundary smoothing, training labels)",
        description="Derived annotations of recorded episodes; raw data is never changed.",
    )
    sub = p.add_subparsers(dest="annotate_command", required=True, metavar="SUBCOMMAND")

    def common(q: argparse.ArgumentParser) -> None:
        add_store_option(q)
        q.add_argument("--params", metavar="FILE.toml", help="smoothing parameters (see docs/smoothing.md)")

    smooth = sub.add_parser(
        "smooth",
        help="smooth the intervention boundaries of episodes and store the result",
        description="Derive boundary smoothing for each episode (all by default) and store it next to "
        "the episode. Episodes already smoothed with the same parameters are skipped.",
    )
    common(smooth)
    which = smooth.add_mutually_exclusive_group()
    which.add_argument("--tag", metavar="TAG", help="the episodes of a tagged version")
    which.add_argument("--episodes", nargs="+", metavar="ID", help="these episodes")
    smooth.set_defaults(func=run_smooth)

    plot = sub.add_parser(
        "plot-boundary",
        help="draw raw vs smoothed data around one boundary of an episode",
        description="Write a PNG comparing raw and smoothed actions and positions at a takeover "
        "or hand-back.",
    )
    plot.add_argument("episode_id", metavar="EPISODE_ID")
    plot.add_argument(
        "--boundary", type=int, default=0, metavar="N", help="which takeover/hand-back, from 0 (default 0)"
    )
    plot.add_argument("--out", required=True, metavar="FILE.png")
    common(plot)
    plot.set_defaults(func=run_plot_boundary)

    derive = sub.add_parser(
        "derive-labels",
        help="derive training labels (control classes, value targets, improvement) and store them",
        description="Derive per-step training labels for a batch of episodes and store them next to "
        "each episode (docs/training_labels.md): control-source classes with pre-intervention "
        "windows, RECAP value targets and the improvement indicator. The batch is the episodes of a "
        "tagged version (a single name that is a tag) or the episodes named; the outcome label of each "
        "is the one the version froze, or for episodes named the one that counts now (their label "
        "revisions resolved), else the station's success flag. A batch derived before with the same "
        "parameters and labels is not computed again. With --commit, a new version of the tag's "
        "episodes pins them.",
    )
    derive.add_argument("targets", nargs="+", metavar="TAG|EPISODE")
    add_store_option(derive)
    derive.add_argument(
        "--params", metavar="FILE.toml", help="training-label parameters (docs/training_labels.md)"
    )
    derive.add_argument(
        "--commit",
        metavar="NEW",
        help="with one TAG: also freeze its episodes again (labels, step ranges and videos as they "
        "are) as a new version NEW, a child of TAG, each entry pinning its training labels, so "
        "`pull` offers them as keys and the exports write them",
    )
    derive.add_argument("--message", "-m", default="", metavar="M", help="with --commit: what NEW is for")
    derive.set_defaults(func=run_derive_labels)

    boundary = sub.add_parser(
        "boundary",
        help="show, move or mark an episode's takeovers and hand-backs (edits are revisions)",
        description="Show an episode's takeovers and hand-backs as they count; or edit one, named by "
        "its recorded step: --move-to S makes it count from step S (within its segment), "
        "--pre-window-from S marks the pre-intervention window before a takeover from step S "
        "(--default-window goes back to the training-label parameters' window). Each edit is a "
        "revision by its annotator; the recorded control source never changes. Derived training "
        "labels use the edits that count (docs/training_labels.md).",
    )
    boundary.add_argument("episode_id", metavar="EPISODE_ID")
    which_b = boundary.add_mutually_exclusive_group()
    which_b.add_argument("--takeover", type=int, metavar="STEP", help="the takeover recorded at STEP")
    which_b.add_argument("--handback", type=int, metavar="STEP", help="the hand-back recorded at STEP")
    boundary.add_argument("--move-to", type=int, metavar="S", help="count the boundary from step S")
    window_b = boundary.add_mutually_exclusive_group()
    window_b.add_argument("--pre-window-from", type=int, metavar="S", help="pre-intervention window from S")
    window_b.add_argument("--default-window", action="store_true", help="the parameters' default window")
    boundary.add_argument("--note", default="", help="why (stored with the edit)")
    boundary.add_argument(
        "--annotator", metavar="NAME", help="who edits (default: [operator] name, else the user)"
    )
    boundary.add_argument("--lead", action="store_true", help="edit as the lead")
    add_store_option(boundary)
    boundary.set_defaults(func=run_boundary)
