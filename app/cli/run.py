"""`takeover run` and `takeover engine`: attempts on the station, with or without the console."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from takeover.app.cli.common import error
from takeover.app.cli.serving import add_security_args
from takeover.app.runtime.config import OPERATORS, AppConfig, load_config, with_overrides


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML configuration (see docs/config.md)")
    p.add_argument(
        "--store", metavar="PATH", help="dataset store folder (default: $TAKEOVER_STORE or per-user)"
    )
    p.add_argument("--operator", choices=OPERATORS, help="who may take over (default: keyboard)")
    p.add_argument("--policy-url", metavar="URL", help="a running policy server, e.g. tcp://127.0.0.1:5555")
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


def _periods(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of periods: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {n}")
    return n


def _config_from(args: argparse.Namespace) -> AppConfig:
    cfg = load_config(args.config)
    return with_overrides(
        cfg,
        store={"path": args.store},
        operator={"kind": args.operator},
        policy={"url": args.policy_url, "checkpoint": args.checkpoint},
        loop={
            "rate_hz": args.rate,
            "max_steps": args.max_steps,
            "paced": False if args.no_pacing else None,
            "inference_lead_steps": args.ask_ahead,
        },
    )


def cmd_run(args: argparse.Namespace) -> int:
    from takeover.app.runtime.compose import ensure_render_backend

    ensure_render_backend()
    cfg = _config_from(args)
    if args.headless:
        from takeover.app.engine.headless import run_headless

        return run_headless(cfg, args.episodes, seed=args.seed, use_policy=not args.no_policy)
    return _run_console(args)


def _run_console(args: argparse.Namespace) -> int:
    from takeover.app.gui.console.app import (
        NO_DISPLAY_EXIT_CODE,
        NO_DISPLAY_MESSAGE,
        display_available,
        run_gui,
    )
    from takeover.app.net.ports import free_port

    if not display_available():
        print(NO_DISPLAY_MESSAGE, file=sys.stderr)
        return NO_DISPLAY_EXIT_CODE
    status = f"tcp://127.0.0.1:{free_port()}"
    command = f"tcp://127.0.0.1:{free_port()}"
    engine_cmd = [
        sys.executable,
        "-m",
        "takeover.app.cli",
        "engine",
        "--status-endpoint",
        status,
        "--command-endpoint",
        command,
        "--parent-pid",
        str(os.getpid()),
    ]
    for flag in ("config", "store", "operator", "policy_url", "checkpoint", "rate", "max_steps", "ask_ahead"):
        value = getattr(args, flag)
        if value is not None:
            engine_cmd += [f"--{flag.replace('_', '-')}", str(value)]
    if args.no_pacing:
        engine_cmd.append("--no-pacing")
    engine = subprocess.Popen(engine_cmd, stdin=subprocess.DEVNULL)
    try:
        return run_gui(status, command)
    finally:
        try:
            engine.wait(timeout=5)
        except subprocess.TimeoutExpired:
            engine.terminate()
            engine.wait(timeout=5)


def cmd_engine(args: argparse.Namespace) -> int:
    from takeover.app.engine.process import Engine
    from takeover.app.engine.sockets import EngineEndpoints
    from takeover.app.net.curve import CurveKeyError
    from takeover.app.runtime.compose import ensure_render_backend

    try:
        endpoints = EngineEndpoints(
            status=args.status_endpoint,
            command=args.command_endpoint,
            allow_remote=args.allow_remote,
            curve_secret_key=args.curve_secret or "",
            curve_allowed_clients=tuple(args.curve_allow),
        )
    except ValueError as exc:
        return error(str(exc))
    ensure_render_backend()
    parent = args.parent_pid if args.parent_pid else None
    engine = Engine(_config_from(args), endpoints, parent_pid=parent)
    try:
        engine.bind()
    except (OSError, CurveKeyError) as exc:
        return error(str(exc))
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
    run.add_argument("--seed", type=int, default=0, help="seed of the first attempt (default 0)")
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
    engine.add_argument("--status-endpoint", required=True, metavar="URL")
    engine.add_argument("--command-endpoint", required=True, metavar="URL")
    engine.add_argument(
        "--parent-pid", type=int, default=0, metavar="PID", help="exit when this process ends"
    )
    add_security_args(engine)
    engine.set_defaults(func=cmd_engine)
