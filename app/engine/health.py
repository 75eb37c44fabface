"""The health panel's items (:class:`~takeover.app.engine.protocol.HealthItem`): the operator's
SpaceMouse, the policy server, the station, each free-running camera, and the recording.

:class:`HealthMonitor` makes them for each published status from the running parts; figures that
cost a system call (the disk's free space) are read at most once a second.
"""

from __future__ import annotations

import time

from takeover.app.engine.protocol import HealthItem
from takeover.app.runtime.compose import Runtime
from takeover.recorder.disk import free_bytes, megabytes

DISK_WARNING_BYTES = 2e9
"""Free space below which the recording health is a warning."""
DISK_WARNING_S = 600.0
"""...or below this much recording at the measured rate (whichever says so first)."""
POLICY_SLOW_MS = 100.0
"""A policy round trip slower than this is a warning."""
OVERRUN_WARNING = 0.01
"""A share of late periods above this in the latest attempt is a station warning..."""
OVERRUN_MIN_PERIODS = 100
"""... once it has run this many periods (one late first period is not a trend)."""
_DISK_EVERY_S = 1.0


class HealthMonitor:
    """Health items from the running parts (``runtime`` is set while the engine is up)."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self._disk: tuple[float, HealthItem] | None = None

    def items(self, camera_health: dict[str, str]) -> tuple[HealthItem, ...]:
        rt = self.runtime
        if rt is None:
            return ()
        out = [*self._devices(rt), *self._policy(rt), self._station(rt)]
        out += [
            HealthItem(f"camera {name}", "ok" if state == "ok" else "error", "" if state == "ok" else state)
            for name, state in sorted(camera_health.items())
        ]
        out.append(self._recording(rt))
        return tuple(out)

    def _devices(self, rt: Runtime) -> list[HealthItem]:
        from takeover.teleop.spacemouse import SpaceMouseTeleop

        loop = rt.loop
        items = []
        for dev in loop.devices if loop is not None else ():
            if isinstance(dev, SpaceMouseTeleop):
                if dev.connected:
                    items.append(HealthItem("SpaceMouse", "ok", f"connected ({dev.model})"))
                else:
                    items.append(HealthItem("SpaceMouse", "error", f"not connected: {dev.problem}"))
        return items

    def _policy(self, rt: Runtime) -> list[HealthItem]:
        policy = rt.policy
        if policy is None:
            return []
        rtt = policy.round_trip_s
        latency = f"{1000 * rtt:.0f} ms round trip" if rtt is not None else "no answer yet"
        if not policy.healthy:
            return [HealthItem("policy server", "error", f"not answering ({latency} before)")]
        slow = rtt is not None and 1000 * rtt > POLICY_SLOW_MS
        return [HealthItem("policy server", "warning" if slow else "ok", f"{policy.policy_id}: {latency}")]

    def _station(self, rt: Runtime) -> HealthItem:
        station, loop = rt.station, rt.loop
        name = station.info.name if station is not None else "station"
        if station is not None and getattr(station, "connected", True) is False:
            return HealthItem(f"station {name}", "error", "not connected")
        renderer = getattr(station, "render_worker", None)
        failure = getattr(renderer, "failure", "") if renderer is not None else ""
        if failure:  # the station steps on, but its attempts have no camera frames
            return HealthItem(f"station {name}", "error", f"cameras not rendered: {failure}")
        timer = loop.last_timer if loop is not None else None
        if (
            timer is not None
            and timer.periods >= OVERRUN_MIN_PERIODS
            and timer.overruns / timer.periods > OVERRUN_WARNING
        ):
            return HealthItem(
                f"station {name}",
                "warning",
                f"{timer.overruns} of {timer.periods} periods late in the latest attempt",
            )
        return HealthItem(f"station {name}", "ok")

    def _recording(self, rt: Runtime) -> HealthItem:
        now = time.monotonic()
        if self._disk is not None and now - self._disk[0] < _DISK_EVERY_S:
            item = self._disk[1]
        else:
            item = recording_health(rt)
            self._disk = (now, item)
        dropped = sum(rt.recorder.dropped_frames().values()) if rt.recorder is not None else 0
        if dropped and item.level == "ok":
            return HealthItem(item.name, "warning", f"{dropped} frames dropped; {item.detail}")
        detail = f"{dropped} frames dropped; {item.detail}" if dropped else item.detail
        return HealthItem(item.name, item.level, detail)


def recording_health(rt: Runtime) -> HealthItem:
    """Disk space left for recording, as time at the measured rate; a warning well before it runs
    out, an error (with the recorder's refusal) when an attempt could not be stored."""
    loop, recorder, store = rt.loop, rt.recorder, rt.store
    if loop is None or recorder is None or store is None:
        return HealthItem("recording", "error", "no recorder")
    free = free_bytes(store.wal_dir)
    plan = loop.attempt_plan()
    rate = recorder.bytes_per_second(plan)
    minutes = free / rate / 60.0 if rate > 0 else float("inf")
    detail = f"{megabytes(free)} free (about {minutes:,.0f} min of recording)"
    refusal = recorder.start_refusal(plan)
    if refusal:
        return HealthItem("recording", "error", refusal)
    if free < DISK_WARNING_BYTES or minutes * 60.0 < DISK_WARNING_S:
        return HealthItem("recording", "warning", f"disk nearly full: {detail}")
    return HealthItem("recording", "ok", detail)
