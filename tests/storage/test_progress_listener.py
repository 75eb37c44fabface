"""Progress reported to a listener (a window's bar) instead of drawn: only for the work of the
thread that asked, with every advance, and nothing drawn on the terminal."""

from __future__ import annotations

import threading

from takeover.storage.progress import progress_bar, reporting_to


def test_a_listener_hears_each_advance_of_its_own_thread_only() -> None:
    heard: list[tuple[str, int | None, int]] = []
    elsewhere: list[str] = []

    def other_thread() -> None:
        with progress_bar("elsewhere", 2, enabled=False) as advance:
            advance(1)
            elsewhere.append("done")

    with (
        reporting_to(lambda d, t, n: heard.append((d, t, n))),
        progress_bar("exporting episodes", 3, enabled=False, unit="episodes") as advance,
    ):
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        for _ in range(3):
            advance(1)
    with progress_bar("after", 1, enabled=False) as advance:
        advance(1)
    assert heard == [("exporting episodes", 3, n) for n in range(4)]
    assert elsewhere == ["done"]
