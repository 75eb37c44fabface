"""What every `takeover ... serve` command shares: the endpoint security options, one-line
errors, and serving until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType
from typing import Protocol


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


def serve_until_signalled(server: Serving, banner: str) -> int:
    """Print ``banner``, serve until SIGTERM/SIGINT, close the server; return exit code 0."""

    def _stop(signum: int, frame: FrameType | None) -> None:
        server.stop()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    print(banner, file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
