"""The `takeover` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from takeover.app.runtime.config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="takeover", description=__doc__ and "Takeover: human-in-the-loop robot data collection."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from takeover.app.cli import annotate, data, doctor, policy, run, station

    for group in (run, data, annotate, doctor, policy, station):
        group.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from takeover.app.runtime.compose import StartupError
        from takeover.storage.errors import StorageError

        if isinstance(exc, StartupError | StorageError):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
