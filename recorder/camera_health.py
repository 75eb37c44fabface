"""The health of the free-running cameras, kept from their capture threads' reports.

:class:`CameraBook` is thread-safe. It keeps each camera's latest :class:`CameraHealth` (what the
console shows), turns every change of state during an attempt into a camera event to record,
and counts the frames each camera missed in the attempt: the frames expected at its nominal rate
while it was down (from the time its next frame was due until its first frame after a reconnect,
clipped to the attempt).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from takeover.recorder.cameras import CameraSpec
from takeover.recorder.capture import CameraHealth
from takeover.storage.schema import Event, EventKind, camera_event


class CameraBook:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._health: dict[str, CameraHealth] = {}
        self._t0: float | None = None
        """Start of the attempt being recorded (None between attempts)."""
        self._missed: dict[str, float] = {}
        """Frames missed in the attempt so far in outages that are over."""

    def report(self, health: CameraHealth) -> Event | None:
        """Keep ``health``; return the event to record when it changes the camera's state while
        an attempt is recorded (its step is placed by its time when the episode is built)."""
        name = health.camera
        with self._lock:
            before = self._health.get(name)
            self._health[name] = health
            t0 = self._t0
            if before is None or before.up == health.up or t0 is None:
                return None
            if health.up:
                missed = _frames(before.spec, max(before.since, t0), health.since)
                self._missed[name] = self._missed.get(name, 0.0) + missed
                outage = health.since - before.since
                return camera_event(
                    EventKind.CAMERA_UP,
                    -1,
                    health.since,
                    name,
                    f"back after {outage:.2f} s, {round(missed)} frames missed",
                )
        return camera_event(EventKind.CAMERA_DOWN, -1, health.since, name, health.reason)

    def begin(self) -> list[Event]:
        """An attempt starts: count from now; camera-down events at step 0 for cameras down already."""
        now = self._clock()
        with self._lock:
            self._t0 = now
            self._missed = {}
            down = [h for h in self._health.values() if not h.up]
        return [
            camera_event(
                EventKind.CAMERA_DOWN, 0, now, h.camera, f"down since before the attempt: {h.reason}"
            )
            for h in sorted(down, key=lambda h: h.camera)
        ]

    def missed_frames(self) -> dict[str, int]:
        """Frames each camera missed in the current (or last) attempt, counting an outage that is
        still on up to now."""
        with self._lock:
            return self._missed_until(self._clock())

    def end(self) -> dict[str, int]:
        """The attempt ends now: the frames each camera missed in it."""
        with self._lock:
            missed = self._missed_until(self._clock())
            self._t0 = None
            self._missed = {k: float(v) for k, v in missed.items()}
        return missed

    def _missed_until(self, now: float) -> dict[str, int]:
        out = {}
        for name, h in self._health.items():
            missed = self._missed.get(name, 0.0)
            if not h.up and self._t0 is not None:
                missed += _frames(h.spec, max(h.since, self._t0), now)
            out[name] = round(missed)
        return dict(sorted(out.items()))

    def specs(self) -> list[CameraSpec]:
        """The cameras reported so far (their size and nominal rate)."""
        with self._lock:
            return [self._health[name].spec for name in sorted(self._health)]

    def summary(self) -> dict[str, str]:
        """Camera name -> 'ok', or what is wrong ('DOWN 3.1 s, reconnecting (attempt 4): reason', or
        'DOWN 3.1 s: reason' when its capture gave up)."""
        now = self._clock()
        with self._lock:
            health = dict(self._health)
        out = {}
        for name in sorted(health):
            h = health[name]
            if h.up:
                out[name] = "ok"
                continue
            tries = f" (attempt {h.attempts})" if h.attempts else ""
            doing = f", reconnecting{tries}" if h.reconnecting else ""
            out[name] = f"DOWN {max(0.0, now - h.since):.1f} s{doing}: {h.reason}"
        return out


def _frames(spec: CameraSpec, start: float, end: float) -> float:
    """Frames expected at the camera's nominal rate from ``start`` to ``end``."""
    return max(0.0, end - start) * spec.fps
