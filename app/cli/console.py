"""The console's front ends: `takeover run` opening a console on an engine it starts, and
`takeover console --attach URL` on an engine that runs on its own (here or on a robot computer).

A console started by `run` owns its engine: the engine dies with it, and Settings can restart it
with the saved file. An attached console does not: closing it asks whether to detach (the engine
keeps running) or stop the engine, and a second console on the same engine is refused unless it
asks to watch (``--read-only``).
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from takeover.app.cli.common import endpoint_type, error
from takeover.app.engine.attach import AttachError, request_attach, viewer_name
from takeover.app.net import curve
from takeover.app.net.children import Child, ChildStartError, ipc_endpoint, private_ipc_dir, start_child
from takeover.app.runtime.config import AppConfig, load_config
from takeover.app.runtime.config_file import config_file_for, default_config_path

if TYPE_CHECKING:
    from takeover.app.gui.console.settings import SettingsTarget

ENGINE_READY_S = 30.0
"""How long the console waits for its engine to bind its sockets."""
ENGINE_GRACE_S = 15.0
"""How long an engine whose console went may take to save the attempt and stop its own children."""


class OwnedEngine:
    """The console's engine child: started, restarted with the saved settings, stopped."""

    def __init__(self, command_line: list[str]) -> None:
        self.command_line = command_line
        self._child: Child | None = None
        self._lock = threading.Lock()

    def start(self) -> tuple[str, str]:
        """Start it and wait until it listens: (status, command) endpoints (ChildStartError)."""
        self._child = start_child(self.command_line, "engine")
        bound = self._child.wait_ready(("status", "command"), ENGINE_READY_S)
        return bound["status"], bound["command"]

    def restart(self) -> str:
        """Stop the engine (it saves a running attempt) and start it again on the same endpoints,
        with the configuration file as it is now; the window's link reconnects by itself."""
        with self._lock:
            if self._child is not None:
                self._child.stop(timeout_s=ENGINE_GRACE_S)
                self._child = None
            try:
                self.start()
            except ChildStartError as exc:
                return f"the engine did not restart: {exc}; change the settings and apply again"
        return "the engine restarted with the new settings"

    def stop(self) -> None:
        with self._lock:
            if self._child is not None:
                self._child.wait(timeout_s=5.0)  # the window sent QUIT: the attempt is saved, it ends
                self._child.stop()
                self._child = None


def run_console(args: argparse.Namespace, forwarded: list[str], options: dict[str, str]) -> int:
    """`takeover run` with a window: start the engine (with ``forwarded`` options) on ipc://
    sockets in a private folder, and show the console until it is closed. ``options``: dotted
    key -> the option that set it on this command line (shown in Settings, not editable)."""
    from takeover.app.gui.console.app import (
        NO_DISPLAY_EXIT_CODE,
        NO_DISPLAY_MESSAGE,
        display_available,
        run_gui,
    )
    from takeover.app.gui.console.session import ConsoleOptions

    if not display_available():
        print(NO_DISPLAY_MESSAGE, file=sys.stderr)
        return NO_DISPLAY_EXIT_CODE
    config_file = config_file_for(args.config)
    with private_ipc_dir() as folder:
        try:
            endpoints = [ipc_endpoint(folder, "status"), ipc_endpoint(folder, "command")]
        except ValueError as exc:
            return error(str(exc))
        command_line = [sys.executable, "-m", "takeover.app.cli", "engine"]
        command_line += ["--status-endpoint", endpoints[0], "--command-endpoint", endpoints[1]]
        if config_file is not None:  # else the engine reads the per-user file, if Settings made one
            command_line += ["--config", str(config_file)]
        engine = OwnedEngine(command_line + forwarded)
        try:
            status, command = engine.start()

            def target() -> SettingsTarget:
                return settings_target(config_file, options, engine.restart)

            console = ConsoleOptions(owns_engine=True, settings=target)
            return run_gui(status, command, viewer=viewer_name(), options=console)
        except ChildStartError as exc:
            return error(str(exc))
        finally:
            engine.stop()


def settings_target(
    config_file: Path | None, options: dict[str, str], restart: Callable[[], str]
) -> SettingsTarget:
    """What Settings edits in a console started by `run`: the file it read (or the per-user file
    it will read), the options given on the command line, and a restart of its engine."""
    from takeover.app.gui.console.settings import SettingsTarget

    path = config_file if config_file is not None else default_config_path()
    config = load_config(path) if path.is_file() else AppConfig()
    return SettingsTarget(config, path, options, restart)


def cmd_console(args: argparse.Namespace) -> int:
    from takeover.app.gui.console.app import NO_DISPLAY_EXIT_CODE, NO_DISPLAY_MESSAGE, display_available

    if not display_available():
        print(NO_DISPLAY_MESSAGE, file=sys.stderr)
        return NO_DISPLAY_EXIT_CODE
    keys = None
    if args.curve_secret or args.curve_server:
        if not (args.curve_secret and args.curve_server):
            return error(
                "--curve-secret and --curve-server go together "
                "(this console's secret key file, the engine's public key file)"
            )
        try:
            keys = curve.ClientKeys.load(args.curve_secret, args.curve_server)
        except curve.CurveKeyError as exc:
            return error(str(exc))
    viewer = viewer_name()
    try:
        reply = request_attach(args.attach, viewer, keys, timeout_s=args.timeout)
    except AttachError as exc:
        return error(str(exc))
    if not reply.granted and not args.read_only:
        return error(
            f"another console is attached to the engine at {args.attach}: {reply.holder}. Close that "
            "one (it can detach and leave the engine running), or watch with --read-only"
        )
    from takeover.app.gui.console.app import run_gui
    from takeover.app.gui.console.session import ConsoleOptions

    options = ConsoleOptions(owns_engine=False, attach_url=args.attach)
    return run_gui(reply.status, args.attach, viewer=viewer, keys=keys, options=options)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "console",
        help="open a console on an engine that runs on its own (attach; detach leaves it running)",
        description="Attach a console to a running engine (`takeover engine` prints its command "
        "endpoint). Closing the console asks whether to detach (the engine keeps running) or stop it.",
    )
    p.add_argument(
        "--attach",
        required=True,
        type=endpoint_type(bind=False),
        metavar="URL",
        help="the engine's command endpoint, e.g. tcp://robot-pc:7002 or ipc:///run/user/1000/engine/command",
    )
    p.add_argument(
        "--read-only",
        action="store_true",
        help="watch an engine another console holds (this one may still hold and e-stop)",
    )
    p.add_argument("--curve-secret", metavar="FILE", help="this console's secret key (.key_secret)")
    p.add_argument("--curve-server", metavar="FILE", help="the engine's public key (.key)")
    p.add_argument(
        "--timeout", type=float, default=5.0, metavar="S", help="how long to wait for the engine (default 5)"
    )
    p.set_defaults(func=cmd_console)
