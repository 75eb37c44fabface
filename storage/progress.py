"""Progress bars for long storage work (pulls, training-cache builds), drawn with rich.

rich is used because it is well kept, already in the environment and draws on stderr without
touching stdout; a bar is shown only when stderr is a terminal and is removed when the work ends,
so scripts, logs and tests see no bar at all (and an error stays one line).

A window that runs storage work on a worker thread shows its own bar instead: within
:func:`reporting_to` every bar of that thread reports to the window's listener (drawn or not),
and nothing is drawn on the terminal. The listener is a context variable, so it reaches the work
of the thread (context) that set it and no other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Advance = Callable[[int], None]
"""Called with the amount of work just done (bytes, frames)."""
Listener = Callable[[str, int | None, int], None]
"""Told (description, total or None, done so far) when a bar starts and each time it advances."""

_listener: ContextVar[Listener | None] = ContextVar("takeover_progress_listener", default=None)


@contextmanager
def reporting_to(listener: Listener) -> Iterator[None]:
    """Within the block, the progress of this thread's storage work goes to ``listener``."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


def _ignore(n: int) -> None:
    return None


@contextmanager
def progress_bar(
    description: str, total: int | None, *, enabled: bool, unit: str = "bytes"
) -> Iterator[Advance]:
    """A bar for ``total`` units of work; yields the function to call as work gets done.

    Draws nothing unless ``enabled`` and stderr is a terminal; within :func:`reporting_to`, tells
    its listener instead (whether ``enabled`` or not).
    """
    listener = _listener.get()
    if listener is not None:
        done = 0
        listener(description, total, 0)

        def advance(n: int) -> None:
            nonlocal done
            done += n
            listener(description, total, done)

        yield advance
        return
    if not enabled:
        yield _ignore
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = Console(stderr=True)
    if not console.is_terminal:
        yield _ignore
        return
    amount = (DownloadColumn(), TransferSpeedColumn()) if unit == "bytes" else (MofNCompleteColumn(),)
    columns = (TextColumn("{task.description}"), BarColumn(), *amount, TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
