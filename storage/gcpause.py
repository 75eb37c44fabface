"""Pausing Python's cycle collector while a version's entries are built.

Reading or freezing a version of ten thousand episodes makes some hundred thousand small objects
(the manifest's dicts, strings and entries). None of them forms a reference cycle, but their
number alone sets off full collections of the cycle collector, each walking every object of the
process: a commit of a parent plus 50 episodes took ~85 ms with it and ~47 ms without (median of 8,
10,000 episodes). Reference counting still frees everything as usual; the collector resumes at the
end (only if it was running: a process that turned it off keeps it off).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def cycle_collector_paused() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def pausing_cycle_collector(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` run with the cycle collector paused (see the module's doc)."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with cycle_collector_paused():
            return fn(*args, **kwargs)

    return wrapper
