"""What every serving command (`station serve`, `policy serve`, `engine`) shares: the endpoint
security options, the link to a parent process, and serving until Ctrl-C, SIGTERM or the
parent's end."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType
from typing import Any, Protocol

from takeover.app.cli.common import USAGE_EXIT, error
from takeover.app.net.children import PARENT_FD_OPTION, ParentLink

SERVER_GRACE_S = 5.0
"""How long a server whose parent went may take to stop before it is ended."""


class Serving(Protocol):
    def serve_forever(self) -> None: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


def add_security_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-remote", action="store_true", help="allow an address other than loopback (needs CURVE keys)"
    )
    parser.add_argument("--curve-secret", metavar="FILE", help="server secret key file (.key_secret)")
    parser.add_argument(
        "--curve-allow",
        metavar="PATH",
        action="append",
        default=[],
        help="client public key file, or a directory of *.key files (repeatable)",
    )


def security_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of :func:`add_security_args` as the servers' configurations name them."""
    return {
        "allow_remote": args.allow_remote,
        "curve_secret_key": args.curve_secret or "",
        "curve_allowed_clients": tuple(args.curve_allow),
    }


def add_parent_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        PARENT_FD_OPTION,
        type=int,
        metavar="FD",
        help="given by the takeover process that starts this one: report the bound endpoints on "
        "this inherited socket and stop when it closes (the parent is gone)",
    )


def adopt_parent(args: argparse.Namespace, grace_s: float) -> ParentLink | None:
    """The link to the parent named by ``--parent-fd``, watched from now on; ValueError if bad."""
    if args.parent_fd is None:
        return None
    return ParentLink.adopt(args.parent_fd, grace_s=grace_s)


def refuse(parent: ParentLink | None, message: str) -> int:
    """One error line: said by the parent when there is one (it is waiting for this child), else here."""
    if parent is None:
        return error(message)
    parent.report_error(message)
    return USAGE_EXIT


def serve_until_signalled(server: Serving, banner: str, endpoint: str, parent: ParentLink | None) -> int:
    """Report ``endpoint`` to the parent, print ``banner``, serve until SIGTERM/SIGINT or the
    parent's end, close the server; return exit code 0."""

    def _stop(signum: int, frame: FrameType | None) -> None:
        server.stop()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    print(banner, file=sys.stderr, flush=True)
    if parent is not None:
        parent.on_gone(server.stop)
        parent.report(endpoint=endpoint)
    try:
        server.serve_forever()
    finally:
        server.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
