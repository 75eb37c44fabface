"""The reference bridge for real robots: a small adapter interface and a Station built on it.

A robot joins Takeover by implementing :class:`RobotAdapter` around its vendor driver (connect,
read the state and the cameras, send an end-effector target, stop, close) and serving a
:class:`BridgeStation` with :class:`~takeover.app.station.server.StationServer` on the robot
computer. The control loop then reaches it through :class:`~takeover.app.station.remote.RemoteStation`
like any other station. See docs/protocol.md for an adapter guide.

Actions are ``(dx, dy, dz, gripper)`` in [-1, 1]: the first three scale to an end-effector step
of at most ``max_step_m`` metres per axis, added to the current *target* (not the measured
position, so sensor noise does not accumulate) and clamped to the workspace box; the gripper
value goes to the adapter as it is (-1 open, +1 closed). An action that is not a finite vector
within the limits is refused before the adapter is called.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import numpy as np

from takeover.app.station.base import Observation, Station, StationInfo

ACTION_DIM = 4


class RobotAdapter(abc.ABC):
    """The vendor-specific part of a real robot. No I/O in the constructor."""

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the driver and the cameras."""

    @abc.abstractmethod
    def read_state(self) -> tuple[np.ndarray, np.ndarray]:
        """``(state (S,) float, end-effector position (3,) float in metres)``, read now."""

    @abc.abstractmethod
    def read_cameras(self) -> dict[str, tuple[np.ndarray, float]]:
        """Camera name -> ``((H, W, 3) uint8 RGB image, capture time in s)``, on the monotonic clock
        the bridge stamps its observations with (``time.monotonic`` unless it was given another)."""

    @abc.abstractmethod
    def send_target(self, ee_target: np.ndarray, gripper: float) -> None:
        """Command the end effector to ``ee_target`` (3,) metres and the gripper to ``gripper`` in [-1, 1]."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop all motion now (hold position). Must be safe to call at any time, repeatedly."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the driver and the cameras."""

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@dataclass(frozen=True)
class BridgeConfig:
    name: str = "bridge"
    robot: str = "robot"
    task: str = ""
    state_dim: int = 7
    cameras: tuple[str, ...] = ()
    rate_hz: float = 20.0
    workspace_low: tuple[float, float, float] = (-0.5, 0.3, 0.05)
    workspace_high: tuple[float, float, float] = (0.5, 0.9, 0.5)
    """The box (metres) the end-effector target is clamped to."""
    max_step_m: float = 0.01
    """End-effector step (metres per axis) for an action of 1."""
    home: tuple[float, float, float] | None = None
    """Where ``reset`` sends the end effector; None holds the current position."""

    def __post_init__(self) -> None:
        if self.state_dim < 1:
            raise ValueError(f"state_dim must be positive, got {self.state_dim}")
        if not self.rate_hz > 0:
            raise ValueError(f"rate_hz must be positive, got {self.rate_hz}")
        if len(self.workspace_low) != 3 or len(self.workspace_high) != 3:
            raise ValueError("workspace_low and workspace_high must have 3 values")
        if not all(lo < hi for lo, hi in zip(self.workspace_low, self.workspace_high, strict=True)):
            raise ValueError("workspace_low must be below workspace_high on every axis")
        if not 0 < self.max_step_m <= 0.1:
            raise ValueError(f"max_step_m must be in (0, 0.1], got {self.max_step_m}")
        if self.home is not None and not all(
            lo <= h <= hi
            for lo, h, hi in zip(self.workspace_low, self.home, self.workspace_high, strict=True)
        ):
            raise ValueError(f"home {self.home} is outside the workspace")


class BridgeStation(Station):
    """A :class:`Station` that drives a :class:`RobotAdapter` with clamped end-effector targets.
    Observations are stamped with ``clock`` (the robot computer's monotonic clock; the station
    server that serves the bridge must read the same one)."""

    def __init__(
        self,
        adapter: RobotAdapter,
        config: BridgeConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.adapter = adapter
        self.config = config or BridgeConfig()
        self.clock = clock
        self._low = np.asarray(self.config.workspace_low, dtype=np.float64)
        self._high = np.asarray(self.config.workspace_high, dtype=np.float64)
        self._target: np.ndarray | None = None
        self._connected = False

    def connect(self) -> None:
        if not self._connected:
            self.adapter.connect()
            self._connected = True

    def close(self) -> None:
        if not self._connected:
            return
        self._connected = False
        self._target = None
        try:
            self.adapter.stop()
        finally:
            self.adapter.close()

    @property
    def info(self) -> StationInfo:
        c = self.config
        return StationInfo(
            name=c.name,
            robot=c.robot,
            task=c.task,
            action_dim=ACTION_DIM,
            state_dim=c.state_dim,
            cameras=c.cameras,
            rate_hz=c.rate_hz,
            action_low=(-1.0,) * ACTION_DIM,
            action_high=(1.0,) * ACTION_DIM,
            workspace_low=c.workspace_low,
            workspace_high=c.workspace_high,
        )

    def reset(self, seed: int | None = None) -> Observation:
        """Start an attempt: hold where the arm is (or go ``home``). The seed has no meaning here."""
        self._require_connected()
        if self.config.home is not None:
            self._target = np.asarray(self.config.home, dtype=np.float64)
            self.adapter.send_target(self._target.astype(np.float32), -1.0)
        else:
            _, ee = self._read_state()
            self._target = np.clip(ee.astype(np.float64), self._low, self._high)
        return self.observe()

    def act(self, action: np.ndarray) -> Observation:
        self._require_connected()
        if self._target is None:
            raise RuntimeError("call reset() before act()")
        a = np.asarray(action)
        if a.dtype.kind not in "f" or a.shape != (ACTION_DIM,):
            raise ValueError(
                f"action must be a float array of shape ({ACTION_DIM},), got {a.dtype} {a.shape}"
            )
        if not np.all(np.isfinite(a)) or np.any(np.abs(a) > 1.0):
            raise ValueError(f"action must be finite and within [-1, 1], got {a.tolist()}")
        target = np.clip(
            self._target + a[:3].astype(np.float64) * self.config.max_step_m, self._low, self._high
        )
        self.adapter.send_target(target.astype(np.float32), float(a[3]))
        self._target = target
        return self.observe()

    def observe(self) -> Observation:
        """Read the robot and the cameras now, without commanding anything."""
        self._require_connected()
        state, ee = self._read_state()
        t = self.clock()
        images: dict[str, np.ndarray] = {}
        times: dict[str, float] = {}
        for name, (img, t_img) in self.adapter.read_cameras().items():
            if name not in self.config.cameras:
                continue
            frame = np.asarray(img)
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise ValueError(
                    f"camera {name!r} gave {frame.dtype} {frame.shape}, expected uint8 (H, W, 3)"
                )
            images[name], times[name] = np.ascontiguousarray(frame), float(t_img)
        target = self._target if self._target is not None else np.clip(ee, self._low, self._high)
        return Observation(
            t=t,
            state=state,
            ee_target=np.asarray(target, dtype=np.float32),
            images=images,
            image_times=times,
            success=False,
        )

    def _read_state(self) -> tuple[np.ndarray, np.ndarray]:
        state, ee = self.adapter.read_state()
        s = np.asarray(state, dtype=np.float32).reshape(-1)
        e = np.asarray(ee, dtype=np.float32).reshape(-1)
        if s.shape != (self.config.state_dim,) or e.shape != (3,):
            raise ValueError(
                f"adapter state has shape {s.shape} and end effector {e.shape}; "
                f"expected ({self.config.state_dim},) and (3,)"
            )
        if not (np.all(np.isfinite(s)) and np.all(np.isfinite(e))):
            raise ValueError("adapter state contains NaN or Inf")
        return s, e

    def _require_connected(self) -> None:
        if not self._connected:
            raise RuntimeError("bridge station is not connected: call connect() first")
