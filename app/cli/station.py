"""`takeover station ...`: serve a station over the station protocol; make CURVE keys.

Heavy imports (zmq, the simulator) happen inside the commands, so building the parser stays cheap.
"""

from __future__ import annotations

import argparse

from takeover.app.cli.common import endpoint_type, error
from takeover.app.cli.serving import (
    SERVER_GRACE_S,
    add_parent_option,
    add_security_args,
    adopt_parent,
    security_options,
    serve_until_signalled,
)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    station = subparsers.add_parser(
        "station",
        help="serve a station over ZeroMQ, make CURVE keys",
        description="Serve a robot station over the station protocol (docs/protocol.md).",
    )
    sub = station.add_subparsers(dest="station_command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="serve the simulated station (or the fake robot bridge) until stopped",
        description="Answer observe/act/reset/health requests until stopped (Ctrl-C or SIGTERM).",
    )
    serve.add_argument(
        "--endpoint",
        type=endpoint_type(bind=True),
        metavar="URL",
        help="ZeroMQ endpoint to bind (default tcp://127.0.0.1:5556; port 0: any free port, printed)",
    )
    serve.add_argument("--robot", choices=("sim", "fake"), default="sim", help="what to serve (default sim)")
    serve.add_argument("--task", default="pick-place-v3", help="Meta-World task (default pick-place-v3)")
    serve.add_argument("--camera", default="corner", help="camera to render (default corner)")
    add_security_args(serve)
    add_parent_option(serve)
    serve.set_defaults(func=cmd_serve)

    keygen = sub.add_parser(
        "keygen",
        help="make a CURVE key pair (NAME.key and NAME.key_secret)",
        description="Write a CURVE key pair as Z85 text files with 0600 permissions.",
    )
    keygen.add_argument("--dir", required=True, metavar="DIR", help="folder for the key files")
    keygen.add_argument("--name", required=True, help="file name stem, e.g. the host name")
    keygen.set_defaults(func=cmd_keygen)


def cmd_keygen(args: argparse.Namespace) -> int:
    from pathlib import Path

    from takeover.app.net.curve import CurveKeyError, generate_keypair

    folder = Path(args.dir).expanduser()
    if folder.exists() and not folder.is_dir():
        return error(f"--dir {folder} is a file, not a folder: give a folder for the key files")
    try:
        public, secret = generate_keypair(folder, args.name)
    except CurveKeyError as exc:
        return error(str(exc))
    except OSError as exc:
        return error(
            f"--dir {folder}: cannot write key files there ({exc.strerror}): choose a folder you may write"
        )
    print(f"public key: {public}\nsecret key: {secret} (keep it on this machine)")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:  # first: a parent that goes while the simulator loads ends this process at once
        parent = adopt_parent(args, grace_s=SERVER_GRACE_S)
    except ValueError as exc:
        return error(str(exc))
    from takeover.app.net.curve import CurveKeyError
    from takeover.app.station.base import Station
    from takeover.app.station.protocol import DEFAULT_STATION_ENDPOINT
    from takeover.app.station.server import StationServer, StationServerConfig

    try:
        config = StationServerConfig(
            endpoint=args.endpoint or DEFAULT_STATION_ENDPOINT,
            **security_options(args),
        )
    except ValueError as exc:
        return error(str(exc))
    station: Station
    if args.robot == "fake":
        from takeover.app.station.bridge import BridgeStation
        from takeover.app.station.fake_robot import FakeRobot, FakeRobotConfig

        station = BridgeStation(FakeRobot(), FakeRobotConfig().bridge_config())
    else:
        from takeover.app.runtime.compose import ensure_render_backend
        from takeover.app.station.metaworld_sim import (
            MAX_STEPS_CEILING,
            MetaWorldConfig,
            MetaWorldStation,
            check_task,
        )

        ensure_render_backend()
        try:
            check_task(args.task, "--task")
            # The engine ends each attempt at the task's limit (StationInfo.time_limit_s); held
            # periods act on a served station, so Meta-World's own ceiling must not end it first.
            cameras = (args.camera,) if args.camera else ()
            station = MetaWorldStation(
                MetaWorldConfig(task=args.task, cameras=cameras, max_steps=MAX_STEPS_CEILING)
            )
        except ValueError as exc:
            return error(str(exc))
    server = StationServer(station, config)
    try:
        endpoint = server.bind()
    except (OSError, RuntimeError, ValueError, CurveKeyError) as exc:
        server.close()
        return error(str(exc))

    secured = " (CURVE)" if config.uses_curve else ""
    banner = f"station {station.info.name} serving on {endpoint}{secured}"
    return serve_until_signalled(server, banner, endpoint, parent)
