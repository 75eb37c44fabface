"""3Dconnexion SpaceMouse as a teleop device, on pyspacemouse 2.x.

pyspacemouse opens the device, decodes its HID reports and reports the six axes in the right-handed,
Z-up frame ``AxisConvention.HID_Z_UP`` (+x right, +y away from the operator, +z up; rotations
right-handed about those axes). :class:`SpaceMouseConfig` maps those device axes onto the robot's
end-effector axes (permutation and sign), then applies a deadband and a per-axis scale.

Each :meth:`SpaceMouseTeleop.read` drains every report waiting in the HID buffer (bounded), so
the twist is the latest state, while button presses and touches that happened in between are
still seen: edges are detected report by report. An unplugged device never raises to the caller:
``read()`` reports ``connected=False`` with the reason and a zero twist, and tries to reopen the
device at most every ``reopen_interval_s``. See docs/teleop.md.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyspacemouse
from pyspacemouse import AxisConvention, SpaceMouseState

from takeover.teleop.devices import AXES, GripperToggle, TeleopCommand, TeleopDevice, TeleopRequest

ButtonRef = int | str | None
"""A button by index (0 = first button of the model) or by its devices.toml name ("LEFT"); None = unused."""


@dataclass(frozen=True)
class SpaceMouseConfig:
    deadband: float = 0.08
    """Axis magnitudes at or below this (pyspacemouse units, ~1.0 = full deflection) read as zero."""
    scale: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    """Gain per robot axis (x y z roll pitch yaw), after the deadband; 0 disables an axis."""
    axis_map: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    """Robot axis i reads device axis ``axis_map[i]`` (device order: x y z roll pitch yaw, Z-up)."""
    axis_sign: tuple[int, ...] = (1, 1, 1, 1, 1, 1)
    """Sign per robot axis, applied after ``axis_map``."""
    gripper_button: ButtonRef = 0
    """Toggles the gripper on each press."""
    handback_button: ButtonRef = 1
    """Asks to hand control back to the policy on each press."""
    takeover_button: ButtonRef = None
    """Asks for takeover on each press (in addition to, or instead of, motion)."""
    hold_button: ButtonRef = None
    """Asks to hold (freeze the robot) on each press."""
    estop_button: ButtonRef = None
    """Asks for the latched e-stop on each press (a model with a spare button)."""
    estop_long_press_s: float = 1.0
    """Holding the hand-back button (the second button by default) this long asks for the latched
    e-stop, also on a two-button model; 0 turns the long press off."""
    takeover_on_motion: bool = True
    """Motion beyond the deadband asks for takeover, once per touch."""
    device_name: str | None = None
    """A pyspacemouse model name ("SpaceMouseCompact"); None = the first supported device found."""
    device_index: int = 0
    """Which one, when several devices of ``device_name`` are plugged in."""
    path: str | None = None
    """Open exactly this HID device node (e.g. /dev/hidraw3); overrides ``device_name``."""
    reopen_interval_s: float = 1.0
    """After the device goes away, try to open it again at most this often."""
    max_reports_per_read: int = 256
    """Bound on reports drained per read, so a flooding device cannot stall the control loop."""
    gripper_initially_closed: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.deadband < 1.0:
            raise ValueError(f"SpaceMouseConfig.deadband must be in [0, 1), got {self.deadband}")
        for name in ("scale", "axis_map", "axis_sign"):
            if len(getattr(self, name)) != 6:
                raise ValueError(f"SpaceMouseConfig.{name} needs 6 entries (x y z roll pitch yaw)")
        if any(s < 0 for s in self.scale):
            raise ValueError(f"SpaceMouseConfig.scale must be >= 0 (use axis_sign to flip), got {self.scale}")
        if sorted(self.axis_map) != [0, 1, 2, 3, 4, 5]:
            raise ValueError(f"SpaceMouseConfig.axis_map must be a permutation of 0..5, got {self.axis_map}")
        if any(s not in (-1, 1) for s in self.axis_sign):
            raise ValueError(f"SpaceMouseConfig.axis_sign entries must be +1 or -1, got {self.axis_sign}")
        if self.reopen_interval_s <= 0:
            raise ValueError("SpaceMouseConfig.reopen_interval_s must be > 0")
        if not 0.0 <= self.estop_long_press_s <= 10.0:
            raise ValueError(
                "SpaceMouseConfig.estop_long_press_s must be in 0..10 s (0 = off), "
                f"got {self.estop_long_press_s}"
            )
        if self.max_reports_per_read < 1:
            raise ValueError("SpaceMouseConfig.max_reports_per_read must be at least 1")
        buttons = [b for b in self._button_refs() if b is not None]
        if len(buttons) != len(set(buttons)):
            raise ValueError(f"SpaceMouseConfig: one button is bound to two actions: {buttons}")

    def _button_refs(self) -> tuple[ButtonRef, ...]:
        return (
            self.gripper_button,
            self.handback_button,
            self.takeover_button,
            self.hold_button,
            self.estop_button,
        )


def apply_deadband(values: np.ndarray, deadband: float) -> np.ndarray:
    """Zero inside the deadband, rescaled outside it so the output is continuous at the edge.

    ``|v| <= d`` gives 0; otherwise ``sign(v) * (|v| - d) / (1 - d)``, which is 0 at the edge and
    1 at full deflection. Input is clipped to [-1, 1] first.
    """
    v = np.clip(np.asarray(values, dtype=np.float64), -1.0, 1.0)
    mag = np.maximum(np.abs(v) - deadband, 0.0) / (1.0 - deadband)
    return np.sign(v) * mag


class SpaceMouseTeleop(TeleopDevice):
    """A SpaceMouse read through pyspacemouse; poll :meth:`read` from the control loop.

    Not thread-safe: one thread (the control loop) calls ``connect``, ``read``, ``sync_gripper`` and
    ``close``. Decoding happens inside ``read()``, so there is no background thread to stop.
    """

    def __init__(
        self,
        config: SpaceMouseConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        name: str = "spacemouse",
    ) -> None:
        self.config = config if config is not None else SpaceMouseConfig()
        self.name = name
        self._clock = clock
        self._mouse: Any = None  # pyspacemouse.SpaceMouseDevice while open
        self._wanted = False
        self._last_attempt: float | None = None
        self._error = ""
        self._lost = ""
        self._gripper = GripperToggle(closed=self.config.gripper_initially_closed)
        self._sign = np.asarray(self.config.axis_sign, dtype=np.float64)
        self._scale = np.asarray(self.config.scale, dtype=np.float64)
        self._perm = np.asarray(self.config.axis_map, dtype=np.intp)
        # device axes that feed a robot axis with a non-zero gain
        used = np.zeros(6, dtype=bool)
        used[self._perm[self._scale > 0]] = True
        self._used = used
        # per-connection state, (re)set by _reset_device_state()
        self._reports = 0
        self._axes = np.zeros(6, dtype=np.float64)
        self._buttons: tuple[int, ...] = ()
        self._touching = False
        self._button_index: dict[str, int | None] = {}
        # per-read accumulators, filled by _on_report()
        self._requests: list[TeleopRequest] = []
        self._pressed_any = False
        self._long_press_from: float | None = None
        """When the hand-back button went down (its long press is an e-stop); None: not held."""
        self._long_press_fired = False

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._mouse is not None

    @property
    def problem(self) -> str:
        """Why the device is not usable now ('' while it is)."""
        return self._error

    @property
    def model(self) -> str:
        """The model pyspacemouse recognised ("" while not open)."""
        return str(self._mouse.name) if self._mouse is not None else ""

    def connect(self) -> None:
        """Open the device. Raises ``ConnectionError`` if it cannot be opened now; :meth:`read` keeps
        trying every ``reopen_interval_s`` until :meth:`close`."""
        self._wanted = True
        if self._mouse is not None:
            return
        if not self._try_open(self._clock()):
            raise ConnectionError(self._error)

    def close(self) -> None:
        self._wanted = False
        self._drop_handle()

    def sync_gripper(self, closed: bool) -> None:
        """Tell the device what the gripper is now, so the next press toggles from there."""
        self._gripper.sync(closed)

    # -- polling ---------------------------------------------------------------------------
    def read(self) -> TeleopCommand:
        now = self._clock()
        if not self._wanted:
            return TeleopCommand.idle(now, connected=False, error="not connected (call connect())")
        if self._mouse is None:
            due = self._last_attempt is None or now - self._last_attempt >= self.config.reopen_interval_s
            if not (due and self._try_open(now)):
                return TeleopCommand.idle(now, connected=False, error=self._error)

        self._requests = []
        self._pressed_any = False
        try:
            for _ in range(self.config.max_reports_per_read):
                before = self._reports
                self._mouse.read()
                if self._reports == before:
                    break
        except Exception as exc:  # the HID layer raises its own and OS errors on unplug
            self._lost = f"device lost: {type(exc).__name__}: {exc}"
            self._error = self._lost
            self._last_attempt = now
            self._drop_handle()
            # presses decoded before the failure still count; the motion does not
            return TeleopCommand(
                t=now,
                twist=np.zeros(6, dtype=np.float32),
                gripper=self._gripper.take(),
                requests=tuple(self._requests),
                active=False,
                connected=False,
                error=self._error,
            )

        self._check_long_press(now)
        twist = self._twist(self._axes)
        held = any(self._buttons)
        return TeleopCommand(
            t=now,
            twist=twist,
            gripper=self._gripper.take(),
            requests=tuple(self._requests),
            active=bool(self._touching or held or self._pressed_any),
            connected=True,
            error="",
        )

    def drop_requests(self) -> tuple[TeleopRequest, ...]:
        """Drain the reports waiting in the device now and forget their requests (presses made
        between attempts); return them."""
        return self.read().requests

    # -- internals -------------------------------------------------------------------------
    def _check_long_press(self, now: float) -> None:
        """The hand-back button held for ``estop_long_press_s``: an e-stop (once per press)."""
        since = self._long_press_from
        limit = self.config.estop_long_press_s
        if since is not None and limit > 0 and not self._long_press_fired and now - since >= limit:
            self._long_press_fired = True
            self._requests.append(TeleopRequest.ESTOP)

    def _twist(self, device_axes: np.ndarray) -> np.ndarray:
        db = apply_deadband(device_axes, self.config.deadband)
        out = self._sign * db[self._perm] * self._scale
        return np.clip(out, -1.0, 1.0).astype(np.float32)

    def _reset_device_state(self) -> None:
        self._reports = 0
        self._axes = np.zeros(6, dtype=np.float64)
        self._buttons = ()
        self._touching = False
        self._button_index = {}
        self._requests = []
        self._pressed_any = False
        self._long_press_from = None
        self._long_press_fired = False

    def _try_open(self, now: float) -> bool:
        self._last_attempt = now
        cfg = self.config
        try:
            if cfg.path is not None:
                mouse = pyspacemouse.open_by_path(
                    cfg.path, callback=self._on_report, axis_convention=AxisConvention.HID_Z_UP
                )
            else:
                mouse = pyspacemouse.open(
                    callback=self._on_report,
                    device=cfg.device_name,
                    device_index=cfg.device_index,
                    axis_convention=AxisConvention.HID_Z_UP,
                    nonblocking=True,
                )
        except Exception as exc:  # no device, unknown model, permission denied, missing hidapi
            reason = f"cannot open SpaceMouse: {type(exc).__name__}: {exc}"
            self._error = f"{self._lost}; {reason}" if self._lost else reason
            return False
        self._reset_device_state()
        self._mouse = mouse
        self._buttons = (0,) * len(mouse.info.button_names)
        try:
            self._button_index = self._resolve_buttons(mouse.info.button_names)
        except ValueError as exc:
            self._drop_handle()
            self._error = str(exc)
            return False
        self._error = ""
        self._lost = ""
        return True

    def _resolve_buttons(self, names: tuple[str, ...]) -> dict[str, int | None]:
        refs = {
            "gripper": self.config.gripper_button,
            "handback": self.config.handback_button,
            "takeover": self.config.takeover_button,
            "hold": self.config.hold_button,
            "estop": self.config.estop_button,
        }
        out: dict[str, int | None] = {}
        for action, ref in refs.items():
            if ref is None:
                out[action] = None
            elif isinstance(ref, str):
                if ref not in names:
                    raise ValueError(f"{action} button {ref!r} is not on this model; buttons: {names}")
                out[action] = names.index(ref)
            else:
                # a model with fewer buttons simply has no such button: the action is unavailable
                out[action] = ref if 0 <= ref < len(names) else None
        return out

    def _drop_handle(self) -> None:
        mouse, self._mouse = self._mouse, None
        self._touching = False
        self._axes = np.zeros(6, dtype=np.float64)
        self._buttons = ()
        self._long_press_from, self._long_press_fired = None, False
        if mouse is not None:
            # closing a handle whose device is gone may fail; it is gone either way
            with contextlib.suppress(Exception):
                mouse.close()

    def _on_report(self, state: SpaceMouseState) -> None:
        """Called by pyspacemouse after each decoded report (inside ``read()``, on this thread)."""
        self._reports += 1
        self._axes = np.array(
            [state.x, state.y, state.z, state.roll, state.pitch, state.yaw], dtype=np.float64
        )
        touching = bool(np.any((np.abs(self._axes) > self.config.deadband) & self._used))
        if touching and not self._touching and self.config.takeover_on_motion:
            self._requests.append(TeleopRequest.TAKEOVER)
        self._touching = touching

        buttons = tuple(int(b) for b in state.buttons)
        prev = self._buttons if len(self._buttons) == len(buttons) else (0,) * len(buttons)
        for i, (was, now) in enumerate(zip(prev, buttons, strict=True)):
            if now and not was:
                self._pressed_any = True
                self._on_press(i)
        handback = self._button_index.get("handback")
        if handback is not None and handback < len(buttons):
            if not buttons[handback]:
                self._long_press_from, self._long_press_fired = None, False
            elif self._long_press_from is None:
                self._long_press_from = self._clock()
            self._check_long_press(self._clock())
        self._buttons = buttons

    def _on_press(self, index: int) -> None:
        idx = self._button_index
        if index == idx.get("gripper"):
            self._gripper.press()
        if index == idx.get("takeover"):
            self._requests.append(TeleopRequest.TAKEOVER)
        if index == idx.get("handback"):
            self._requests.append(TeleopRequest.HANDBACK)
        if index == idx.get("hold"):
            self._requests.append(TeleopRequest.HOLD)
        if index == idx.get("estop"):
            self._requests.append(TeleopRequest.ESTOP)


__all__ = ["AXES", "SpaceMouseConfig", "SpaceMouseTeleop", "apply_deadband"]
