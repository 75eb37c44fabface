"""`takeover run` and `takeover engine`: attempts on the station, with or without the console."""

from __future__ import annotations

import argparse
import os

from takeover.app.cli.common import endpoint_type, error, seed_type
from takeover.app.cli.console import ENGINE_GRACE_S
from takeover.app.cli.serving import (
    add_parent_option,
    add_security_args,
    adopt_parent,
    refuse,
    security_options,
)
from takeover.app.runtime.config import OPERATORS, AppConfig, load_config, with_overrides
from takeover.app.runtime.config_file import config_file_for

FORWARDED_TO_ENGINE = (
    "store",
    "operator",
    "operator_name",
    "policy_url",
    "checkpoint",
    "rate",
    "max_steps",
    "ask_ahead",
    "seed",
)
"""The run options the console passes on to its engine (besides the configuration file)."""


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        metavar="FILE",
        help="TOML configuration (docs/config.md); default: $TAKEOVER_CONFIG or "
        "~/.config/takeover/config.toml if it exists",
    )
    p.add_argument(
        "--store", metavar="PATH", help="dataset store folder (default: $TAKEOVER_STORE or per-user)"
    )
    p.add_argument("--operator", choices=OPERATORS, help="who may take over (default: keyboard)")
    p.add_argument(
        "--operator-name",
        metavar="NAME",
        help="the person at the console this session (stored with each attempt; default: the device)",
    )
    p.add_argument(
        "--policy-url",
        type=endpoint_type(bind=False),
        metavar="URL",
        help="a running policy server, e.g. tcp://127.0.0.1:5555",
    )
    p.add_argument("--checkpoint", metavar="PATH", help="checkpoint for the local policy server")
    p.add_argument("--rate", type=float, metavar="HZ", help="control rate")
    p.add_argument("--max-steps", type=int, metavar="N", help="steps before an attempt times out")
    p.add_argument("--no-pacing", action="store_true", help="run as fast as the station allows")
    p.add_argument(
        "--ask-ahead",
        type=_periods,
        metavar="N",
        help="ask the policy for its next chunk N periods early, on a worker thread "
        "(for a policy server whose answers take periods; default 0: when the chunk is used up)",
    )
    p.add_argument(
        "--seed",
        type=seed_type,
        metavar="N",
        help="simulator seed of the first attempt, then N+1, ... (default: each attempt takes a seed "
        "the store has never handed out; see docs/config.md, Seeds)",
    )
    p.add_argument(
        "--evaluation",
        action="store_true",
        help="evaluation mode: seeds from the range reserved for evaluation (default 5000..9999)",
    )


def _periods(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of periods: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {n}")
    return n


OPTIONS = {
    "store.path": "--store",
    "operator.kind": "--operator",
    "operator.name": "--operator-name",
    "policy.url": "--policy-url",
    "policy.checkpoint": "--checkpoint",
    "loop.rate_hz": "--rate",
    "loop.max_steps": "--max-steps",
    "loop.paced": "--no-pacing",
    "loop.inference_lead_steps": "--ask-ahead",
    "seeds.start": "--seed",
    "seeds.evaluation": "--evaluation",
}
"""Which option sets which configuration key (errors name the option)."""


def _config_from(args: argparse.Namespace) -> AppConfig:
    cfg = load_config(config_file_for(args.config))
    return with_overrides(
        cfg,
        options=OPTIONS,
        store={"path": args.store},
        operator={"kind": args.operator, "name": args.operator_name},
        policy={"url": args.policy_url, "checkpoint": args.checkpoint},
        loop={
            "rate_hz": args.rate,
            "max_steps": args.max_steps,
            "paced": False if args.no_pacing else None,
            "inference_lead_steps": args.ask_ahead,
        },
        seeds={"start": args.seed, "evaluation": True if args.evaluation else None},
    )


def _given_options(args: argparse.Namespace) -> dict[str, str]:
    """Dotted key -> the option that set it on this command line (it overrides the file)."""
    given = {}
    for key, option in OPTIONS.items():
        value = getattr(args, option.removeprefix("--").replace("-", "_"))
        if value is not None and value is not False:
            given[key] = option
    return given


def cmd_run(args: argparse.Namespace) -> int:
    from takeover.app.runtime.compose import ensure_render_backend
    from takeover.app.runtime.locks import claim_station_and_store, store_path_problem

    ensure_render_backend()
    cfg = _config_from(args)
    problem = store_path_problem(cfg)
    if problem:
        return error(problem)
    if args.headless:
        from takeover.app.engine.headless import run_headless

        with claim_station_and_store(cfg, "`takeover run --headless`"):
            return run_headless(cfg, args.episodes, use_policy=not args.no_policy)
    from takeover.app.cli.console import run_console

    forwarded: list[str] = []
    for flag in FORWARDED_TO_ENGINE:
        value = getattr(args, flag)
        if value is not None:
            forwarded += [f"--{flag.replace('_', '-')}", str(value)]
    switches = ("no_pacing", "evaluation")
    forwarded += [f"--{flag.replace('_', '-')}" for flag in switches if getattr(args, flag)]
    return run_console(args, forwarded, _given_options(args))


def cmd_engine(args: argparse.Namespace) -> int:
    try:  # first: a console that goes while the engine starts ends it at once
        parent = adopt_parent(args, grace_s=ENGINE_GRACE_S)
    except ValueError as exc:
        return error(str(exc))
    from takeover.app.engine.process import Engine
    from takeover.app.engine.sockets import EngineEndpoints
    from takeover.app.net.curve import CurveKeyError
    from takeover.app.runtime.compose import StartupError, ensure_render_backend
    from takeover.app.runtime.locks import claim_station_and_store, store_path_problem
    from takeover.storage.errors import StorageError

    try:
        endpoints = EngineEndpoints(
            status=args.status_endpoint,
            command=args.command_endpoint,
            **security_options(args),
        )
        config = _config_from(args)
    except ValueError as exc:  # ConfigError too
        return refuse(parent, str(exc))
    if store_path_problem(config):
        return refuse(parent, store_path_problem(config))
    # One engine per store and per station: a second console says who holds them, in one line.
    holder = f"`takeover run` (pid {os.getppid()})" if parent is not None else "`takeover engine`"
    try:
        locks = claim_station_and_store(config, holder)
    except (StorageError, StartupError) as exc:
        return refuse(parent, str(exc))
    with locks:
        ensure_render_backend()
        engine = Engine(config, endpoints, parent=parent)
        try:
            engine.bind()
        except (OSError, CurveKeyError) as exc:
            return refuse(parent, str(exc))
        return engine.run()


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser(
        "run",
        help="run the policy on the station with an operator (opens the console)",
        description="Run attempts on the station: the policy drives, the operator may take over.",
    )
    add_run_options(run)
    run.add_argument("--headless", action="store_true", help="no window: run --episodes attempts and exit")
    run.add_argument(
        "--episodes", type=int, default=1, metavar="N", help="attempts to run headless (default 1)"
    )
    run.add_argument(
        "--no-policy", action="store_true", help="headless demonstrations without a policy server"
    )
    run.set_defaults(func=cmd_run)

    engine = sub.add_parser(
        "engine",
        help="the control-loop process behind the console (started by `run`)",
        description="Serve the control loop to a console over ZeroMQ.",
    )
    add_run_options(engine)
    engine.add_argument("--status-endpoint", required=True, type=endpoint_type(bind=True), metavar="URL")
    engine.add_argument("--command-endpoint", required=True, type=endpoint_type(bind=True), metavar="URL")
    add_parent_option(engine)
    add_security_args(engine)
    engine.set_defaults(func=cmd_engine)
