"""The station interface: what the control loop needs from a robot, simulated or real."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

import numpy as np

from takeover.app.net.messages import LOCAL
from takeover.app.station.clock import OffsetEstimate
from takeover.teleop.devices import TaskProgress


@dataclass(frozen=True)
class StationTimes:
    """An observation's times as a station with a clock of its own stamped them, and the estimate
    that rebased them onto the engine's clock (:class:`~takeover.app.station.clock.OffsetEstimate`)."""

    t: float
    image_times: dict[str, float]
    estimate: OffsetEstimate


@dataclass(frozen=True)
class Observation:
    t: float
    """Monotonic time (s) at which the state was read, on the engine's clock once the loop sees it
    (a station on another computer sends its own; :class:`SyncsClock` stations rebase it)."""
    state: np.ndarray
    """(S,) float32 task state (for the simulated pick-place: Meta-World's 39-D observation)."""
    ee_target: np.ndarray
    """(3,) float32 end-effector position the station is commanded to."""
    images: dict[str, np.ndarray] = field(default_factory=dict)
    """Camera name -> (H, W, 3) uint8 RGB."""
    image_times: dict[str, float] = field(default_factory=dict)
    """Camera name -> monotonic capture time (s), on the same clock as ``t``."""
    success: bool = False
    rendered_earlier: frozenset[str] = field(default=frozenset(), metadata=LOCAL)
    """Cameras whose image was rendered off the loop from an earlier observation's state and is
    stamped (``image_times``) with that observation's ``t``: the recorder places such a frame by its
    time, at the step that observation began. Never on the wire."""
    station_times: StationTimes | None = field(default=None, metadata=LOCAL)
    """The raw times, when ``t`` and ``image_times`` were rebased from a station's own clock (set
    by the client that rebased them; never on the wire). None: the station shares the engine's clock."""


@dataclass(frozen=True)
class StationInfo:
    name: str
    robot: str
    task: str
    action_dim: int
    state_dim: int
    cameras: tuple[str, ...]
    rate_hz: float
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    workspace_low: tuple[float, float, float] | None = None
    workspace_high: tuple[float, float, float] | None = None
    """The box (metres) the station itself keeps its commanded end-effector target in, if it has
    one. The loop keeps the target inside it too (and inside the configured box), so the executed
    action it records is the motion the station actually commands, and a clamp is a ``limit``
    event instead of a silent difference."""
    time_limit_s: float = 0.0
    """How long one attempt at the task may take (s, held time not counted); 0: the station does
    not say (the loop's configured ``max_steps`` applies)."""


class Station(abc.ABC):
    """A robot station. No I/O in the constructor: call :meth:`connect` (or use ``with``)."""

    @abc.abstractmethod
    def connect(self) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    @property
    @abc.abstractmethod
    def info(self) -> StationInfo: ...

    @abc.abstractmethod
    def reset(self, seed: int | None = None) -> Observation:
        """Start a new attempt and return the first observation."""

    @abc.abstractmethod
    def act(self, action: np.ndarray) -> Observation:
        """Apply one action (end-effector delta + gripper) and return the next observation."""

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@runtime_checkable
class SyncsClock(Protocol):
    """Optional capability of a station with a clock of its own (one on another computer): it
    estimates that clock's offset from the engine's and rebases every time it returns onto the
    engine's clock, keeping the raw times in :attr:`Observation.station_times`. In-process
    stations share the engine's clock and have nothing to say."""

    def clock_estimate(self) -> OffsetEstimate | None:
        """The current estimate of the station's clock (None before the first round trip)."""
        ...


@runtime_checkable
class ExpertOracle(Protocol):
    """Optional capability of a station that knows the task's expert action (a simulator, or a
    remote station whose far side is one). Real robots have none; the scripted operator needs it."""

    def expert_action(self) -> np.ndarray | None:
        """The expert action for the current state (None: not available now)."""
        ...


@runtime_checkable
class ReportsProgress(Protocol):
    """Optional capability of a station that can tell how far the current attempt has come (a
    simulator, from its own state): the scripted operator hands back once the attempt is back on
    track instead of after a fixed time. Real robots usually have none."""

    def task_progress(self) -> TaskProgress | None:
        """The attempt's progress now (None: not available now)."""
        ...


@runtime_checkable
class HoldsStill(Protocol):
    """Optional capability of a station that can be held without stepping (a simulator): a held
    period (HOLD, ESTOP) asks :meth:`hold` instead of :meth:`Station.act`, so a pause does not
    advance the task's own step count. Stations without it are held by acting a hold action."""

    def hold(self) -> Observation:
        """A fresh observation of the station as it is, without stepping it."""
        ...


@runtime_checkable
class RendersOffLoop(Protocol):
    """Optional capability of a station that renders its cameras off the control loop: every frame
    is handed to the listeners as it is made (also between attempts), stamped with the time of the
    state it shows. Its observations carry the same frames, named in ``rendered_earlier``."""

    def add_frame_listener(self, listener: Callable[[str, np.ndarray, float], object]) -> None:
        """Call ``listener(camera, image, t)`` on a worker thread for every frame; it must not block."""
        ...

    def show_scene(self) -> None:
        """Have the cameras render the scene as it is now, without stepping (between attempts, so
        the console's live view stays live: a simulator's cameras see nothing new otherwise)."""
        ...
