"""At most one console drives an engine: the others may watch, hold and e-stop.

A console claims the engine with ATTACH, naming itself (``user@host pid N``), and repeats it
every second while it is open; DETACH lets go. The claim lapses when the console has sent
nothing for :data:`LEASE_S`, so a console that crashed, lost its network or was killed does not
lock the engine forever: the next ATTACH takes it. The engine keeps running either way.

While a console holds the engine, a command from anyone else is refused, except HOLD and ESTOP
(whoever sees the robot may stop it) and DEPLOY (it does not drive the robot, is refused while an
attempt runs, and is how `takeover policy deploy` reaches an engine a console holds). With no
console attached, commands are taken from any sender allowed on the socket (the command socket's
own bind policy and CURVE keys decide who).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from takeover.app.engine.protocol import Command, CommandName

LEASE_S = 3.0
"""A console that sent nothing for this long has let go (it renews every second)."""
ANYONE_MAY = frozenset({CommandName.HOLD, CommandName.ESTOP, CommandName.DEPLOY})
"""Commands taken from every sender, attached or not: stopping the robot is never refused, and a
new policy for the next attempt may come from the command line beside the console."""


class ViewerSlot:
    """Which console holds the engine. Thread-safe; ``clock`` is injected for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, lease_s: float = LEASE_S) -> None:
        self._clock = clock
        self.lease_s = lease_s
        self._lock = threading.Lock()
        self._holder = ""
        self._last = 0.0

    def holder(self) -> str:
        """The console holding the engine now ('' if none, or its claim lapsed)."""
        with self._lock:
            return self._current(self._clock())

    def _current(self, now: float) -> str:
        if self._holder and now - self._last > self.lease_s:
            self._holder = ""
        return self._holder

    def attach(self, viewer: str) -> bool:
        """Claim (or renew) the engine for ``viewer``; False if another console holds it."""
        if not viewer:
            return False
        with self._lock:
            now = self._clock()
            if self._current(now) not in ("", viewer):
                return False
            self._holder, self._last = viewer, now
            return True

    def detach(self, viewer: str) -> str:
        """Let go for ``viewer``; '' or why not."""
        with self._lock:
            holder = self._current(self._clock())
            if holder != viewer or not viewer:
                return "this console is not attached to the engine"
            self._holder = ""
            return ""

    def refusal(self, cmd: Command) -> str:
        """'' if ``cmd`` may be carried out, else why not. A command of the holder renews its claim."""
        with self._lock:
            now = self._clock()
            holder = self._current(now)
            if not holder or cmd.viewer == holder:
                if holder:
                    self._last = now
                return ""
            if cmd.name in ANYONE_MAY:
                return ""
            return (
                f"another console is attached ({holder}): this one may watch, hold and e-stop; "
                "close that one (it can detach) to drive from here"
            )
