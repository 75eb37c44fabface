"""Progress bars for long storage work (pulls, training-cache builds), drawn with rich.

rich is used because it is well kept, already in the environment and draws on stderr without
touching stdout; a bar is shown only when stderr is a terminal and is removed when the work ends,
so scripts, logs and tests see no bar at all (and an error stays one line).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

Advance = Callable[[int], None]
"""Called with the amount of work just done (bytes, frames)."""


def _ignore(n: int) -> None:
    return None


@contextmanager
def progress_bar(
    description: str, total: int | None, *, enabled: bool, unit: str = "bytes"
) -> Iterator[Advance]:
    """A bar for ``total`` units of work; yields the function to call as work gets done.

    Draws nothing unless ``enabled`` and stderr is a terminal.
    """
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
