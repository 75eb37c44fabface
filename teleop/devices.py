"""The one small interface every teleop input device implements.

A device is built from its (frozen) config without touching any hardware; :meth:`TeleopDevice.connect`
opens it and :meth:`TeleopDevice.close` releases it. The control loop polls :meth:`TeleopDevice.read`
once per period: it never blocks and never raises because a device went away. It returns a
:class:`TeleopCommand` that carries the motion the operator asks for and the mode transitions the
operator *requested* since the last read. Devices only request; the takeover state machine decides.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self, TypeAlias, runtime_checkable

import numpy as np

from takeover.teleop.state_machine import Mode, Request

AXES: tuple[str, ...] = ("x", "y", "z", "roll", "pitch", "yaw")
"""Order of the six twist components (end-effector frame of the robot)."""


TeleopRequest: TypeAlias = Request
"""A transition an operator asks for: the state machine's own request type."""


@dataclass(frozen=True)
class TeleopCommand:
    """What one input device says at one poll of the control loop."""

    t: float
    """Monotonic time the input was read (the clock the device was given)."""
    twist: np.ndarray
    """(6,) float32 in [-1, 1]: x y z roll pitch yaw, after deadband and scaling."""
    gripper: float | None
    """+1 close, -1 open, None = the operator did not touch the gripper control since the last read."""
    requests: tuple[TeleopRequest, ...]
    """Transitions the operator asked for since the last read, in the order they were asked."""
    active: bool
    """The operator is touching the device: motion beyond the deadband or a button/key."""
    connected: bool
    error: str = ""
    """Why the device is not usable (empty when all is well)."""
    reason: str = ""
    """Why the operator asked for ``requests`` (recorded with their events; empty: no reason given)."""

    def __post_init__(self) -> None:
        twist = np.array(self.twist, dtype=np.float32).reshape(6)
        twist.flags.writeable = False
        object.__setattr__(self, "twist", twist)

    @classmethod
    def idle(cls, t: float, *, connected: bool, error: str = "") -> TeleopCommand:
        """A command that asks for nothing: zero twist, no gripper change, no requests."""
        return cls(
            t=t,
            twist=np.zeros(6, dtype=np.float32),
            gripper=None,
            requests=(),
            active=False,
            connected=connected,
            error=error,
        )


class TeleopDevice(abc.ABC):
    """Base class of input devices. Config goes to the constructor; no I/O in ``__init__``/``__del__``."""

    name: str

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the device."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the device. Safe to call more than once."""

    @abc.abstractmethod
    def read(self) -> TeleopCommand:
        """Non-blocking poll; never raises because the device went away (see ``connected``/``error``)."""

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True)
class TaskProgress:
    """How far the current attempt has come, as a person watching the station would judge it: the
    task's sub-tasks in order (for pick-place: the object grasped and lifted, then the task done)
    and how many of them are done now. The station computes it (a simulator from its own state)."""

    done: int
    """Sub-tasks done now, counted in order from the first (0: none yet). It may fall again: an
    object that was lifted and dropped is no longer held."""
    stages: int
    """How many sub-tasks the task has; ``done == stages`` is the task done."""

    def __post_init__(self) -> None:
        if not 0 <= self.done <= self.stages:
            raise ValueError(f"TaskProgress.done must be in 0..{self.stages}, got {self.done}")


@dataclass(frozen=True)
class Scene:
    """What an operator at the station sees in one period, for devices that watch it."""

    ee_target: np.ndarray
    """(3,) commanded end-effector position."""
    proposed: np.ndarray | None
    """The policy's proposed action for this period (None when there is none)."""
    expert: np.ndarray | None
    """The task's expert action, where the station has an oracle (simulators), else None."""
    mode: Mode
    progress: TaskProgress | None = None
    """How far the attempt has come, where the station says (None: it does not)."""


@runtime_checkable
class WatchesScene(Protocol):
    """Optional capability of a device that decides from what it sees, not from a person's hand
    (the scripted operator): the loop shows it the scene each period before reading it."""

    def begin_attempt(self) -> None:
        """A new attempt starts: forget what was seen in the previous one."""
        ...

    def observe(self, scene: Scene) -> None:
        """Look at this period's scene; may queue requests for the next read."""
        ...


@runtime_checkable
class QueuesRequests(Protocol):
    """Optional capability of a device that keeps the operator's requests until it is read: between
    attempts nobody reads it, and what was asked then must not act in the next attempt."""

    def drop_requests(self) -> tuple[TeleopRequest, ...]:
        """Forget the requests asked for since the last read; return them (the loop keeps an
        e-stop among them: it acts at once, attempt or not)."""
        ...


@runtime_checkable
class SyncsGripper(Protocol):
    """Optional capability of a device with a gripper toggle: the loop tells it the gripper's real
    state at a takeover, so the operator's next press does what they see as the other state."""

    def sync_gripper(self, closed: bool) -> None: ...


@dataclass
class GripperToggle:
    """Gripper state for devices with a single toggle control.

    A press flips between open (-1) and closed (+1). The control loop can tell the device what the
    gripper actually is (for instance at takeover, after the policy moved it) with :meth:`sync`, so
    that the next press does what the operator sees as "the other state".
    """

    closed: bool = False
    _changed: bool = field(default=False, repr=False)

    def press(self) -> None:
        self.closed = not self.closed
        self._changed = True

    def sync(self, closed: bool) -> None:
        self.closed = closed

    def take(self) -> float | None:
        """The gripper command since the last call: +1 / -1 if toggled, else None."""
        if not self._changed:
            return None
        self._changed = False
        return 1.0 if self.closed else -1.0
