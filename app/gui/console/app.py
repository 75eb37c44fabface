"""Entry point of the operator console: build the window, run the Qt event loop."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping

from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication

from takeover.app.engine.attach import viewer_name
from takeover.app.gui.console.engine_link import EngineLink
from takeover.app.gui.console.session import ConsoleOptions, ConsoleSession
from takeover.app.gui.console.window import MainWindow
from takeover.app.net import curve

NO_DISPLAY_EXIT_CODE = 2

NO_DISPLAY_MESSAGE = (
    "takeover: no display available for the operator console (DISPLAY and WAYLAND_DISPLAY are "
    "unset).\n"
    "  Run without the console with --headless, or give it a virtual display: xvfb-run takeover ..."
)


def display_available(env: Mapping[str, str] | None = None, platform: str | None = None) -> bool:
    """Whether Qt can open a window here; checked before a QApplication exists (it would abort)."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    qpa = env.get("QT_QPA_PLATFORM", "").split(":", 1)[0].strip().lower()
    if qpa == "xcb":
        return bool(env.get("DISPLAY"))
    if qpa.startswith("wayland"):
        return bool(env.get("WAYLAND_DISPLAY"))
    if qpa:  # offscreen, minimal, vnc, eglfs, linuxfb, ...: no display server needed
        return True
    if platform in ("win32", "darwin"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def qt_application(name: str, no_display: str) -> QApplication | None:
    """The running ``QApplication`` or a new one, named ``name``; None, with ``no_display`` (or
    why not) printed on stderr, when no window can be opened here."""
    existing = QApplication.instance()
    if existing is None:
        if not display_available():
            print(no_display, file=sys.stderr)
            return None
        app = QApplication(sys.argv[:1])
    elif isinstance(existing, QApplication):
        app = existing
    else:
        print("takeover: a non-GUI Qt application is already running in this process", file=sys.stderr)
        return None
    app.setApplicationName(name)
    return app


@contextlib.contextmanager
def closed_on_sigint(close: Callable[[], object]) -> Iterator[None]:
    """While the block runs (a Qt event loop), Ctrl+C in the terminal calls ``close`` instead of
    killing the process (only on the main thread, where Python takes signals). Python runs signal
    handlers between bytecodes only, so a timer wakes it now and then during the loop."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, lambda _n, _f: close())
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(200)
    try:
        yield
    finally:
        wake.stop()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def run_gui(
    status_endpoint: str,
    command_endpoint: str,
    title: str = "Takeover",
    *,
    viewer: str = "",
    keys: curve.ClientKeys | None = None,
    options: ConsoleOptions | None = None,
) -> int:
    """Show the operator console until it is closed; return the exit code.

    ``viewer``: the name the console attaches under (default ``user@host pid N``); ``keys``:
    CURVE keys for an engine that needs them; ``options``: whether the console owns its engine,
    and its settings (session.py).
    Returns :data:`NO_DISPLAY_EXIT_CODE` with a message on stderr when there is no display.
    Reuses a running ``QApplication`` if there is one.
    """
    app = qt_application(title, NO_DISPLAY_MESSAGE)
    if app is None:
        return NO_DISPLAY_EXIT_CODE

    link = EngineLink(status_endpoint, command_endpoint, keys=keys, viewer=viewer or viewer_name())
    window = MainWindow(link, title=title)
    session = ConsoleSession(window, link, options or ConsoleOptions(), title)
    # Ctrl+C closes the window cleanly (QUIT to the engine) instead of killing it; an attempt in
    # progress is kept as interrupted (nobody is asked: the operator is at the terminal).
    try:
        with closed_on_sigint(window.close_unattended):
            link.start()
            window.show()
            code = app.exec()
    finally:
        window.close()  # no-op if already closed; sends QUIT and stops the link otherwise
        link.stop()
        window.deleteLater()
        del session
    return int(code)
