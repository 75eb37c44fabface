"""Watchdogs of the control loop: the policy server, the station, and the operator's input.

Each check returns the reason it tripped (empty if it did not); the loop then holds the robot and
records a HOLD event with that reason. Durations are measured on the loop's own clock.
"""

from __future__ import annotations

from collections.abc import Sequence

from takeover.app.control.safety import SafetyConfig
from takeover.teleop.devices import TeleopCommand


class Watchdogs:
    def __init__(self, config: SafetyConfig) -> None:
        self.config = config
        self._last_fresh: float | None = None
        self._was_connected: dict[str, bool] = {}

    def begin(self, now: float) -> None:
        self._last_fresh = now
        self._was_connected.clear()

    def policy(self, waited_s: float) -> str:
        """The policy took ``waited_s`` to deliver a chunk."""
        limit = self.config.policy_timeout_ms
        if 1000.0 * waited_s > limit:
            return f"watchdog: policy chunk took {1000.0 * waited_s:.0f} ms (limit {limit:.0f} ms)"
        return ""

    def station(self, took_s: float) -> str:
        """One act/observe of the station took ``took_s``."""
        limit = self.config.station_timeout_ms
        if 1000.0 * took_s > limit:
            return f"watchdog: station act/observe took {1000.0 * took_s:.0f} ms (limit {limit:.0f} ms)"
        return ""

    def teleop(self, names: Sequence[str], commands: Sequence[TeleopCommand], now: float) -> tuple[str, str]:
        """(stale reason, unplug reason) for this period's device commands.

        A command is fresh when its device is connected and it was sampled within
        ``teleop_stale_ms`` of now. An unplug is a device that was connected at its previous read
        and is not now.
        """
        unplugged = ""
        for name, cmd in zip(names, commands, strict=True):
            was = self._was_connected.get(name, cmd.connected)
            if was and not cmd.connected and not unplugged:
                unplugged = f"{name} disconnected: {cmd.error or 'no reason given'}"
            self._was_connected[name] = cmd.connected
            if cmd.connected and now - cmd.t <= self.config.teleop_stale_ms / 1000.0:
                self._last_fresh = now if self._last_fresh is None else max(self._last_fresh, cmd.t)
        stale = ""
        if self._last_fresh is None:
            self._last_fresh = now
        age_ms = 1000.0 * (now - self._last_fresh)
        limit = self.config.teleop_stale_ms
        if age_ms > limit:
            stale = f"watchdog: no fresh teleop input for {age_ms:.0f} ms (limit {limit:.0f} ms)"
        return stale, unplugged

    def touch_teleop(self, now: float) -> None:
        """Restart the staleness clock (at takeover, the human's input counts from now)."""
        self._last_fresh = now
