"""`takeover policy deploy CHECKPOINT`: serve another checkpoint without stopping the station.

With ``--endpoint`` the command goes to a standalone policy server; with ``--engine`` (or, with
neither, to the one engine running on this machine, as `takeover run` starts it) it goes to the
engine, which forwards it to its own policy server between attempts.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from takeover.app.cli.common import endpoint_type, error

if TYPE_CHECKING:
    from takeover.app.net.curve import ClientKeys

DEPLOY_TIMEOUT_S = 90.0
"""How long the command waits: longer than the engine gives its policy server to load."""


def add_deploy_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    deploy = sub.add_parser(
        "deploy",
        help="serve another checkpoint from the next attempt on, without stopping the station",
        description="Make a policy server serve CHECKPOINT from its next request on. Without "
        "--endpoint the running engine (a console's or `takeover engine`) forwards it to its own "
        "policy server between attempts (refused while an attempt runs); the next attempt records "
        "the new policy id. A checkpoint that does not load leaves the old policy serving.",
    )
    deploy.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint file (.safetensors)")
    where = deploy.add_mutually_exclusive_group()
    where.add_argument(
        "--endpoint",
        type=endpoint_type(bind=False),
        metavar="URL",
        help="a standalone policy server (`takeover policy serve`), e.g. tcp://gpu-box:5555",
    )
    where.add_argument(
        "--engine",
        type=endpoint_type(bind=False),
        metavar="URL",
        help="the engine's command endpoint (default: the one engine running on this machine)",
    )
    deploy.add_argument("--curve-secret", metavar="FILE", help="this client's secret key (.key_secret)")
    deploy.add_argument("--curve-server", metavar="FILE", help="the server's or engine's public key (.key)")
    deploy.add_argument(
        "--timeout",
        type=float,
        default=DEPLOY_TIMEOUT_S,
        metavar="S",
        help=f"how long to wait for the checkpoint to load (default {DEPLOY_TIMEOUT_S:g})",
    )
    deploy.set_defaults(func=cmd_deploy)


def cmd_deploy(args: argparse.Namespace) -> int:
    from takeover.app.net import curve

    if not args.timeout > 0:
        return error(f"--timeout must be positive, got {args.timeout:g}")
    keys = None
    if args.curve_secret or args.curve_server:
        if not (args.curve_secret and args.curve_server):
            return error(
                "--curve-secret and --curve-server go together (your secret key, the server's public key)"
            )
        try:
            keys = curve.ClientKeys.load(args.curve_secret, args.curve_server)
        except curve.CurveKeyError as exc:
            return error(str(exc))
    # A relative path means the file here; the server may have started in another folder.
    checkpoint = str(Path(args.checkpoint).absolute()) if Path(args.checkpoint).exists() else args.checkpoint
    if args.endpoint:
        return _deploy_to_server(args.endpoint, checkpoint, keys, args.timeout)
    return _deploy_through_engine(args.engine, checkpoint, keys, args.timeout)


def _deploy_to_server(url: str, checkpoint: str, keys: ClientKeys | None, timeout_s: float) -> int:
    from takeover.app.policy.client import PolicyClient, PolicyUnavailableError

    try:
        with PolicyClient(url, timeout_s=timeout_s, keys=keys) as client:
            reply = client.deploy(checkpoint)
    except PolicyUnavailableError as exc:
        return error(str(exc))
    print(f"policy server at {url} now serves {reply.policy_id} (was {reply.previous_policy_id})")
    return 0


def _deploy_through_engine(
    engine: str | None, checkpoint: str, keys: ClientKeys | None, timeout_s: float
) -> int:
    from takeover.app.engine.attach import AttachError, send_command
    from takeover.app.engine.protocol import Command, CommandName
    from takeover.app.engine.registry import running_engines

    if engine is None:
        found = running_engines()
        if not found:
            return error(
                "no engine is running on this machine: start one (`takeover run`), name one with "
                "--engine URL, or a standalone policy server with --endpoint URL"
            )
        if len(found) > 1:
            listed = ", ".join(f"{e.command} (pid {e.pid})" for e in found)
            return error(f"{len(found)} engines are running ({listed}): choose one with --engine URL")
        engine = found[0].command
    try:
        send_command(engine, Command(CommandName.DEPLOY, checkpoint=checkpoint), keys, timeout_s)
    except AttachError as exc:
        return error(str(exc))
    except ValueError as exc:  # a checkpoint path the command cannot carry
        return error(str(exc))
    print(f"the engine at {engine} deployed {checkpoint}: the next attempt runs it")
    return 0
