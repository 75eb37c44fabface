"""The operator's side of a control period: the input devices, and the watchdogs on them.

Each period, :meth:`TeleopInput.read` first shows the scene to the devices that watch it (a
scripted operator sees the commanded target, the policy's proposal, the task's expert action and
the attempt's progress when the station has them, and the mode), then reads every device.
Devices only *request* transitions; the requests go to the takeover state machine, which the
loop consumes right after. While the human drives, a device that was unplugged, or input that
went stale, holds the robot (:class:`~takeover.app.control.watchdog.Watchdogs`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from takeover.app.control.pacing import Clock
from takeover.app.control.watchdog import Watchdogs
from takeover.app.station.base import ExpertOracle, Observation, ReportsProgress
from takeover.teleop.devices import (
    QueuesRequests,
    Scene,
    SyncsGripper,
    TeleopCommand,
    TeleopDevice,
    WatchesScene,
)
from takeover.teleop.state_machine import Mode, Request, TakeoverStateMachine


class TeleopInput:
    """Reads the operator's devices into the state machine. ``oracle``: the station, if it knows the
    task's expert action (a scripted operator needs it); ``progress``: the station, if it can tell
    how far an attempt has come (a scripted operator hands back by it)."""

    def __init__(
        self,
        devices: Sequence[TeleopDevice],
        machine: TakeoverStateMachine,
        watchdogs: Watchdogs,
        clock: Clock,
        oracle: ExpertOracle | None,
        progress: ReportsProgress | None = None,
    ) -> None:
        self.devices = list(devices)
        self.machine = machine
        self.watchdogs = watchdogs
        self.clock = clock
        self._oracle = oracle
        self._progress = progress
        self._watchers = [d for d in self.devices if isinstance(d, WatchesScene)]

    def begin_attempt(self) -> None:
        """A new attempt: devices that watch the scene start afresh, and what the operator asked
        for between attempts is dropped (an e-stop excepted: it still latches)."""
        for watcher in self._watchers:
            watcher.begin_attempt()
        for dev in self.devices:
            if isinstance(dev, QueuesRequests) and Request.ESTOP in dev.drop_requests():
                self.machine.request(Request.ESTOP, self.clock.now(), f"{dev.name} (between attempts)")

    def read(self, obs: Observation, proposed: np.ndarray) -> list[TeleopCommand]:
        """Every device's command this period (its requests passed to the state machine), and the
        teleop watchdogs run: while the human drives, an unplug or stale input requests a hold."""
        commands = []
        mode = self.machine.mode
        if self._watchers:
            scene = Scene(
                ee_target=obs.ee_target,
                proposed=proposed if np.all(np.isfinite(proposed)) else None,
                expert=self._oracle.expert_action() if self._oracle is not None else None,
                mode=mode,
                progress=self._progress.task_progress() if self._progress is not None else None,
            )
            for watcher in self._watchers:
                watcher.observe(scene)
        for dev in self.devices:
            cmd = dev.read()
            for req in cmd.requests:
                self.machine.request(req, cmd.t, cmd.reason or dev.name)
            commands.append(cmd)
        now = self.clock.now()
        stale, unplugged = self.watchdogs.teleop([d.name for d in self.devices], commands, now)
        if mode is Mode.HUMAN and unplugged:
            self.machine.request(Request.HOLD, now, f"alert: {unplugged}")
        elif mode is Mode.HUMAN and stale:
            self.machine.request(Request.HOLD, now, stale)
        return commands

    def taken_over(self, gripper_closed: bool, t: float) -> None:
        """The human took over at ``t``: the devices' gripper toggles start from the gripper's real
        state, and their input counts as fresh from now."""
        for dev in self.devices:
            if isinstance(dev, SyncsGripper):
                dev.sync_gripper(gripper_closed)
        self.watchdogs.touch_teleop(t)
