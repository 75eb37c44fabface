"""The `takeover` command line: one module per command group (`main` builds the parser)."""

from __future__ import annotations

from takeover.app.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
