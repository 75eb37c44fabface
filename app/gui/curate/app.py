"""Entry point of the curation screen: build the window, run the Qt event loop."""

from __future__ import annotations

from takeover.annotation.labels import Rule
from takeover.app.gui.console.app import NO_DISPLAY_EXIT_CODE, closed_on_sigint, qt_application
from takeover.app.gui.curate.window import CurateWindow
from takeover.app.gui.curate.workers import StoreOpener

NO_DISPLAY_MESSAGE = (
    "takeover: no display available for the curation screen (DISPLAY and WAYLAND_DISPLAY are unset).\n"
    '  Use `takeover data query "..."` and `takeover data commit TAG --query "..."` instead, '
    "or give it a virtual display: xvfb-run takeover curate"
)


def run_curate(opener: StoreOpener, *, rule: Rule = Rule.LEAD, query: str = "", where: str = "") -> int:
    """Show the curation screen until it is closed; return the exit code. ``opener`` opens the
    store (on the screen's worker thread)."""
    app = qt_application("Takeover curation", NO_DISPLAY_MESSAGE)
    if app is None:
        return NO_DISPLAY_EXIT_CODE
    window = CurateWindow(opener, rule=rule, query=query, where=where)
    try:
        # Ctrl+C in the terminal closes the window (a freeze or an export under way ends first).
        with closed_on_sigint(window.close):
            window.start()
            window.show()
            code = app.exec()
    finally:
        window.close()
        window.deleteLater()
    return int(code)
