"""Entry point of the review screen: build the window, run the Qt event loop."""

from __future__ import annotations

from takeover.app.gui.console.app import NO_DISPLAY_EXIT_CODE, closed_on_sigint, qt_application
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
    try:
        # Ctrl+C in the terminal closes the window (labels in flight are written first).
        with closed_on_sigint(window.close):
            window.start()
            window.show()
            code = app.exec()
    finally:
        window.close()  # no-op if closed already; waits for the label writer otherwise
        window.deleteLater()
    return int(code)
