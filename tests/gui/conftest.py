"""GUI test fixtures: a fake engine speaking the real protocol over real ZeroMQ sockets.

The fake (:mod:`.fake_engine`) sits at the wire seam; everything above the wire (the link, its
threads, the window) is the real code.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before anything imports a Qt GUI class

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .fake_engine import FakeEngine, make_status, sample_frame

__all__ = ["in_process_engine", "make_status", "open_console", "sample_frame", "save_console_screenshot"]


@contextlib.contextmanager
def in_process_engine(config_text: str) -> Iterator[tuple[Any, threading.Thread]]:
    """The real engine (simulated station, policy server, recorder, store) on a thread of this
    process, on private ipc:// sockets; yields the :class:`Engine` (``bind()`` gives its endpoints)
    and the thread it runs on (it ends when the engine does: after QUIT, the attempt saved).
    In this process so that what a test installs (a fake HID transport) is what the engine opens."""
    from takeover.app.engine.process import Engine
    from takeover.app.engine.sockets import EngineEndpoints
    from takeover.app.net.children import ipc_endpoint, private_ipc_dir
    from takeover.app.runtime.config import parse_config

    config = parse_config(config_text, "test configuration")
    with private_ipc_dir() as folder:
        engine = Engine(
            config, EngineEndpoints(ipc_endpoint(folder, "status"), ipc_endpoint(folder, "command"))
        )
        engine.bind()
        thread = threading.Thread(target=engine.run, name="engine", daemon=True)
        thread.start()
        try:
            yield engine, thread
        finally:
            engine._quit.set()
            thread.join(timeout=20)
            assert not thread.is_alive(), "the engine did not stop"


@pytest.fixture
def engine() -> Iterator[FakeEngine]:
    peer = FakeEngine()
    peer.start()
    yield peer
    peer.close()


def save_console_screenshot(window: Any, path: Path) -> Path:
    """Render the real window (offscreen works) to a PNG and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(path)):
        raise OSError(f"could not write screenshot {path}")
    return path


def open_console(qtbot: Any, status_ep: str, command_ep: str) -> tuple[Any, Callable[..., None]]:
    """The real console window on an engine's endpoints, shown at 1366×740. Returns the window and
    ``shown(pred, timeout=20000)``, which waits until the window's latest status satisfies ``pred``."""
    from takeover.app.gui.console.engine_link import EngineLink
    from takeover.app.gui.console.window import MainWindow

    link = EngineLink(status_ep, command_ep, command_timeout_ms=2000)
    window = MainWindow(link, title="Takeover")
    qtbot.addWidget(window)
    link.start()
    window.resize(1366, 740)
    window.show()

    def shown(pred: Callable[[Any], bool], timeout: int = 20000) -> None:
        qtbot.waitUntil(lambda: window.status is not None and pred(window.status), timeout=timeout)

    return window, shown


@pytest.fixture
def screenshot() -> Callable[[Any, Path], Path]:
    return save_console_screenshot


@pytest.fixture
def console(qtbot: Any, engine: FakeEngine) -> Iterator[Any]:
    """The real console window, connected to the fake engine and showing its first status."""
    from takeover.app.gui.console.engine_link import EngineLink
    from takeover.app.gui.console.window import MainWindow

    link = EngineLink(engine.status_endpoint, engine.command_endpoint, command_timeout_ms=300)
    window = MainWindow(link, title="Takeover (test)")
    qtbot.addWidget(window)
    link.start()
    with qtbot.waitExposed(window):
        window.show()
    qtbot.waitUntil(lambda: link.connected and window.status is not None, timeout=3000)
    engine.clear()
    # pytest-qt closes the window before this fixture's teardown: a test that leaves an attempt
    # running gets the close question, unanswered, over in a moment.
    window.close_answer_timeout_s = 0.05
    window.end_wait_s = 0.1  # the fake engine's attempts never end by themselves
    yield window
    window.close()
    link.stop()
