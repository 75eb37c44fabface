"""Keyboard as a teleop device.

No window system here: whatever window owns the keyboard (the GUI) pushes the set of keys held
right now with :meth:`KeyboardTeleop.set_keys`, from its own thread, every time it changes (and
may repeat it periodically). The control loop polls :meth:`KeyboardTeleop.read`. Key names are
plain strings ("W", "Space", "Escape") compared without regard to case.

If no ``set_keys`` arrived for longer than ``stale_after_s`` while keys are held, the keys are
treated as released for motion (zero twist, ``active=False``): a frozen or unfocused window must
not keep the robot moving. Press edges are not re-fired when updates resume.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from takeover.teleop.devices import AXES, GripperToggle, TeleopCommand, TeleopDevice, TeleopRequest

KeyBinding = tuple[str, int, float]
"""(key, twist axis index 0..5, value): holding ``key`` adds ``value`` to that axis."""

DEFAULT_MOTION_KEYS: tuple[KeyBinding, ...] = (
    ("W", 0, 1.0),
    ("S", 0, -1.0),
    ("A", 1, 1.0),
    ("D", 1, -1.0),
    ("R", 2, 1.0),
    ("F", 2, -1.0),
)


def _norm(key: str) -> str:
    return key.strip().casefold()


@dataclass(frozen=True)
class KeyboardConfig:
    motion_keys: tuple[KeyBinding, ...] = DEFAULT_MOTION_KEYS
    """Held keys add their value to an axis; opposite keys cancel. The sum is clipped to [-1, 1]."""
    speed: float = 1.0
    """Twist magnitude of one held key (the control loop's gain applies on top, as for any device)."""
    gripper_keys: tuple[str, ...] = ("Space",)
    """Toggle the gripper on each press."""
    takeover_keys: tuple[str, ...] = ("T",)
    handback_keys: tuple[str, ...] = ("H",)
    hold_keys: tuple[str, ...] = ("Escape", "P")
    takeover_on_motion: bool = False
    """Pressing a motion key also asks for takeover (once per touch)."""
    stale_after_s: float = 0.5
    gripper_initially_closed: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.speed <= 1.0:
            raise ValueError(f"KeyboardConfig.speed must be in (0, 1], got {self.speed}")
        if self.stale_after_s <= 0:
            raise ValueError("KeyboardConfig.stale_after_s must be > 0")
        for key, axis, _value in self.motion_keys:
            if not 0 <= axis < len(AXES):
                raise ValueError(
                    f"KeyboardConfig.motion_keys: axis of {key!r} must be 0..5 ({AXES}), got {axis}"
                )
        seen: dict[str, str] = {}
        groups = {
            "gripper_keys": self.gripper_keys,
            "takeover_keys": self.takeover_keys,
            "handback_keys": self.handback_keys,
            "hold_keys": self.hold_keys,
            "motion_keys": tuple(k for k, _, _ in self.motion_keys),
        }
        for group, keys in groups.items():
            for key in dict.fromkeys(_norm(k) for k in keys):
                if key in seen:
                    raise ValueError(f"KeyboardConfig: key {key!r} is in both {seen[key]} and {group}")
                seen[key] = group


class KeyboardTeleop(TeleopDevice):
    """Keys pushed in from a window (any thread), polled by the control loop."""

    def __init__(
        self,
        config: KeyboardConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        name: str = "keyboard",
    ) -> None:
        self.config = config if config is not None else KeyboardConfig()
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        cfg = self.config
        self._motion: dict[str, list[tuple[int, float]]] = {}
        for key, axis, value in cfg.motion_keys:
            self._motion.setdefault(_norm(key), []).append((axis, value))
        self._actions: dict[str, str] = {}
        for action, keys in (
            ("gripper", cfg.gripper_keys),
            ("takeover", cfg.takeover_keys),
            ("handback", cfg.handback_keys),
            ("hold", cfg.hold_keys),
        ):
            self._actions.update({_norm(k): action for k in keys})
        self._bound = set(self._motion) | set(self._actions)
        # guarded by _lock
        self._connected = False
        self._held: frozenset[str] = frozenset()
        self._last_update: float | None = None
        self._requests: list[TeleopRequest] = []
        self._pressed_since_read = False
        self._touching = False
        self._gripper = GripperToggle(closed=cfg.gripper_initially_closed)

    def connect(self) -> None:
        with self._lock:
            self._connected = True

    def close(self) -> None:
        with self._lock:
            self._connected = False
            self._held = frozenset()
            self._last_update = None
            self._requests.clear()
            self._pressed_since_read = False
            self._touching = False

    def sync_gripper(self, closed: bool) -> None:
        """Tell the device what the gripper is now, so the next press toggles from there."""
        with self._lock:
            self._gripper.sync(closed)

    def drop_requests(self) -> tuple[TeleopRequest, ...]:
        """Forget the requests of key presses not yet read (pressed between attempts)."""
        with self._lock:
            dropped = tuple(self._requests)
            self._requests.clear()
            self._pressed_since_read = False
        return dropped

    def set_keys(self, held: Iterable[str], t: float) -> None:
        """The keys held now (bound or not), sampled at monotonic time ``t``. Any thread."""
        keys = frozenset(_norm(k) for k in held) & self._bound
        with self._lock:
            if not self._connected:
                return
            pressed = keys - self._held
            for key in sorted(pressed):
                self._on_press(key)
            touching = any(k in self._motion for k in keys)
            if touching and not self._touching and self.config.takeover_on_motion:
                self._requests.append(TeleopRequest.TAKEOVER)
            self._touching = touching
            self._pressed_since_read |= bool(pressed)
            self._held = keys
            self._last_update = t

    def _on_press(self, key: str) -> None:
        action = self._actions.get(key)
        if action == "gripper":
            self._gripper.press()
        elif action == "takeover":
            self._requests.append(TeleopRequest.TAKEOVER)
        elif action == "handback":
            self._requests.append(TeleopRequest.HANDBACK)
        elif action == "hold":
            self._requests.append(TeleopRequest.HOLD)

    def read(self) -> TeleopCommand:
        now = self._clock()
        with self._lock:
            if not self._connected:
                return TeleopCommand.idle(now, connected=False, error="not connected (call connect())")
            requests = tuple(self._requests)
            self._requests.clear()
            gripper = self._gripper.take()
            pressed = self._pressed_since_read
            self._pressed_since_read = False
            held = self._held
            last = self._last_update
        stale = bool(held) and last is not None and now - last > self.config.stale_after_s
        twist = np.zeros(6, dtype=np.float64)
        if not stale:
            for key in held:
                for axis, value in self._motion.get(key, ()):
                    twist[axis] += value
        twist = np.clip(twist * self.config.speed, -1.0, 1.0)
        error = ""
        if stale and last is not None:
            error = f"keyboard input stale: no key update for {now - last:.2f} s"
        return TeleopCommand(
            t=now,
            twist=twist.astype(np.float32),
            gripper=gripper,
            requests=requests,
            active=(bool(held) and not stale) or pressed,
            connected=True,
            error=error,
        )


__all__ = ["DEFAULT_MOTION_KEYS", "KeyBinding", "KeyboardConfig", "KeyboardTeleop"]
