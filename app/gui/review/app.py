"""Entry point of the review screen: build the window, run the Qt event loop."""

from __future__ import annotations

import signal
import threading

from PyQt6.QtCore import QTimer

from takeover.app.gui.console.app import NO_DISPLAY_EXIT_CODE, qt_application
from takeover.app.gui.review.window import ReviewOptions, ReviewWindow

NO_DISPLAY_MESSAGE = (
    "takeover: no display available for the review screen (DISPLAY and WAYLAND_DISPLAY are unset).\n"
    "  Give it a virtual display (xvfb-run takeover review ...), or label from the command line: "
    "takeover label EPISODE --outcome ..."
)


def run_review(options: ReviewOptions) -> int:
    """Show the review window until it is closed; return the exit code
    (:data:`NO_DISPLAY_EXIT_CODE` with a message on stderr when there is no display)."""
    app = qt_application(options.title, NO_DISPLAY_MESSAGE)
    if app is None:
        return NO_DISPLAY_EXIT_CODE
    window = ReviewWindow(options)
    previous = None
    if threading.current_thread() is threading.main_thread():
        # Ctrl+C in the terminal closes the window (labels in flight are written first).
        previous = signal.signal(signal.SIGINT, lambda _n, _f: window.close())
    wake = QTimer()  # Python runs signal handlers between bytecodes only: wake it now and then
    wake.timeout.connect(lambda: None)
    wake.start(200)
    try:
        window.start()
        window.show()
        code = app.exec()
    finally:
        wake.stop()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        window.close()  # no-op if closed already; waits for the label writer otherwise
        window.deleteLater()
    return int(code)
