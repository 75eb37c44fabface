"""The `takeover` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from takeover.app.cli.common import Parser, error
from takeover.app.runtime.config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="takeover", description="Takeover: human-in-the-loop robot data collection.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from takeover.app.cli import annotate, console, curate, data, doctor, label, policy, review, run, station

    for group in (run, console, data, label, review, annotate, curate, doctor, policy, station):
        group.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit status (2 and one ``error:`` line for anything to fix)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a refused argument (2, one line already printed)
        return exc.code if isinstance(exc.code, int) else 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args))
    except ConfigError as exc:
        return error(str(exc))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from sqlalchemy.exc import DBAPIError

        from takeover.app.runtime.compose import StartupError
        from takeover.storage.errors import StorageError

        if isinstance(exc, StartupError | StorageError):
            return error(str(exc))
        if isinstance(exc, DBAPIError):  # a database error outside the catalog's own calls
            from takeover.storage.catalog_db import translate

            return error(str(translate(exc, "")))
        raise


if __name__ == "__main__":
    sys.exit(main())
