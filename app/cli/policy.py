"""`takeover policy ...`: serve a checkpoint over ZeroMQ, train one from a dataset version.

Heavy imports (torch, zmq) happen inside the commands, so building the parser stays cheap.
"""

from __future__ import annotations

import argparse

from takeover.app.cli.common import add_store_option, endpoint_type, error, store_urls
from takeover.app.cli.policy_deploy import add_deploy_parser
from takeover.app.cli.serving import (
    SERVER_GRACE_S,
    add_parent_option,
    add_security_args,
    adopt_parent,
    refuse,
    security_options,
    serve_until_signalled,
)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    policy = subparsers.add_parser(
        "policy", help="serve or train the robot policy", description="Serve or train the robot policy."
    )
    sub = policy.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="answer action-chunk requests over ZeroMQ",
        description="Load a checkpoint and answer inference requests until stopped (Ctrl-C or SIGTERM).",
    )
    serve.add_argument(
        "--checkpoint",
        metavar="SPEC",
        help="checkpoint file or 'package.module:factory' entry point (default: the shipped checkpoint)",
    )
    serve.add_argument(
        "--endpoint",
        type=endpoint_type(bind=True),
        metavar="URL",
        default=None,
        help="ZeroMQ endpoint to bind (default tcp://127.0.0.1:5555; port 0: any free port, printed)",
    )
    add_security_args(serve)
    add_parent_option(serve)
    serve.add_argument(
        "--open-loop-steps",
        type=int,
        default=0,
        metavar="N",
        help="actions of each chunk clients execute before asking again (default: the whole chunk)",
    )
    serve.set_defaults(func=cmd_serve)

    train = sub.add_parser(
        "train",
        help="train a policy from a tagged dataset version (bc, filtered-bc, recap)",
        description="Train the chunk MLP on a tagged dataset version (docs/learning.md).",
    )
    train.add_argument(
        "--method",
        choices=("bc", "filtered-bc", "recap"),
        default="bc",
        help="bc: every policy and human step; filtered-bc: steps of successes and human corrections; "
        "recap: a value model, then a policy conditioned on the improvement indicator (default bc)",
    )
    train.add_argument("--tag", required=True, help="dataset tag to pull")
    train.add_argument("--out", required=True, metavar="PATH", help="checkpoint file to write (.safetensors)")
    train.add_argument(
        "--epochs", type=int, default=200, metavar="N", help="passes over the data (default 200)"
    )
    train.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    recap = train.add_argument_group("recap")
    recap.add_argument("--value-epochs", type=int, default=200, metavar="N", help="value model passes (200)")
    recap.add_argument("--bins", type=int, default=51, metavar="K", help="value distribution bins (51)")
    recap.add_argument("--lookahead", type=int, default=10, metavar="N", help="N-step advantage N (10)")
    recap.add_argument(
        "--positive-fraction", type=float, default=0.3, metavar="F", help="positive non-human steps (0.3)"
    )
    recap.add_argument("--drop", type=float, default=0.3, metavar="F", help="indicator dropout (0.3)")
    recap.add_argument("--guidance", type=float, default=1.0, metavar="A", help="run-time guidance (1.0)")
    train.add_argument("--store", metavar="PATH", help="dataset store folder (default: the user's store)")
    add_store_option(train, urls_only=True)
    train.set_defaults(func=cmd_train)

    add_deploy_parser(sub)


def cmd_serve(args: argparse.Namespace) -> int:
    try:  # first: a parent that goes while the checkpoint loads ends this process at once
        parent = adopt_parent(args, grace_s=SERVER_GRACE_S)
    except ValueError as exc:
        return error(str(exc))
    from takeover.app.net.curve import CurveKeyError
    from takeover.app.policy import default_checkpoint_path
    from takeover.app.policy.loader import PolicyLoadError, load_policy_from
    from takeover.app.policy.model import use_one_thread
    from takeover.app.policy.server import DEFAULT_ENDPOINT, PolicyServer, ServerConfig

    try:
        config = ServerConfig(
            endpoint=args.endpoint or DEFAULT_ENDPOINT,
            **security_options(args),
            open_loop_steps=args.open_loop_steps,
        )
    except (ValueError, CurveKeyError) as exc:
        return error(str(exc))
    checkpoint = args.checkpoint or str(default_checkpoint_path())
    try:
        policy = load_policy_from(checkpoint)
    except PolicyLoadError as exc:
        hint = "" if args.checkpoint else " (train one with `takeover policy train` and pass --checkpoint)"
        return refuse(parent, f"{exc}{hint}")
    use_one_thread()
    server = PolicyServer(config, policy)
    try:
        endpoint = server.bind()
    except (OSError, ValueError) as exc:
        return error(str(exc))

    return serve_until_signalled(server, f"policy {policy.policy_id} serving on {endpoint}", endpoint, parent)


def cmd_train(args: argparse.Namespace) -> int:
    from takeover.app.policy.checkpoint import save_checkpoint
    from takeover.app.policy.methods import RecapConfig, pull_for, train_method
    from takeover.app.policy.train import TrainConfig

    try:
        config = TrainConfig(epochs=args.epochs, seed=args.seed)
        recap = RecapConfig(
            bins=args.bins,
            value_epochs=args.value_epochs,
            lookahead=args.lookahead,
            positive_fraction=args.positive_fraction,
            drop=args.drop,
            guidance=args.guidance,
        )
    except ValueError as exc:
        return error(str(exc))
    from takeover.storage.errors import StorageError

    try:
        catalog_url, blob_url = store_urls(args)
        pulled = pull_for(args.method, args.tag, args.store, catalog_url=catalog_url, blob_url=blob_url)
        result = train_method(args.method, pulled.items, config, recap)
    except (StorageError, LookupError, ValueError, OSError) as exc:
        return error(f"cannot train on tag {args.tag!r}: {exc}")
    record = {**result.record, **pulled.record(args.tag)}
    try:
        policy_id = save_checkpoint(result.policy.model, args.out, record, result.value)
    except OSError as exc:
        return error(f"cannot write {args.out}: {exc}")
    trained = result.policy
    print(
        f"trained {policy_id} ({args.method}) on {trained.samples} steps from {trained.episodes} episodes "
        f"in {trained.seconds:.1f} s (final loss {trained.losses[-1]:.4f}) -> {args.out}"
    )
    indicator = record.get("indicator")
    if indicator:
        value = record["value_model"]
        print(
            f"value model loss {value['initial_loss']:.4f} -> {value['final_loss']:.4f}; improvement: "
            f"{100 * indicator['positive_fraction']:.1f} % of {indicator['non_human_steps']} non-human steps "
            f"positive, threshold {indicator['threshold']:.5f}"
        )
    return 0
