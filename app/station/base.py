"""The station interface: what the control loop needs from a robot, simulated or real."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Observation:
    t: float
    """Monotonic time (s) at which the state was read."""
    state: np.ndarray
    """(S,) float32 task state (for the simulated pick-place: Meta-World's 39-D observation)."""
    ee_target: np.ndarray
    """(3,) float32 end-effector position the station is commanded to."""
    images: dict[str, np.ndarray] = field(default_factory=dict)
    """Camera name -> (H, W, 3) uint8 RGB."""
    image_times: dict[str, float] = field(default_factory=dict)
    """Camera name -> monotonic capture time (s)."""
    success: bool = False


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
class ExpertOracle(Protocol):
    """Optional capability of a station that knows the task's expert action (a simulator, or a
    remote station whose far side is one). Real robots have none; the scripted operator needs it."""

    def expert_action(self) -> np.ndarray | None:
        """The expert action for the current state (None: not available now)."""
        ...
