"""A fake robot behind the real bridge: a first-order point-mass arm with a synthetic camera.

It sits at the lowest seam (the :class:`~takeover.app.station.bridge.RobotAdapter`), so the
bridge, the station server and the protocol above it run for real in tests. Every command it
receives is kept in :attr:`FakeRobot.commands`, which is how tests prove that a refused request
never moved the robot.

Dynamics: each :meth:`FakeRobot.send_target` advances simulated time by ``dt_s``; the end effector
follows the target with time constant ``tau_s`` (``x += (1 - exp(-dt/tau)) (target - x)``), and so
does the gripper. State (7,): end-effector position (3), gripper (1), end-effector velocity (3).
The camera looks down on the workspace and draws the end effector as a square whose brightness
grows with height.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from takeover.app.station.bridge import BridgeConfig, RobotAdapter

STATE_DIM = 7
CAMERA = "fake"


@dataclass(frozen=True)
class FakeRobotConfig:
    tau_s: float = 0.1
    dt_s: float = 0.05
    start: tuple[float, float, float] = (0.0, 0.6, 0.2)
    width: int = 64
    height: int = 48
    workspace_low: tuple[float, float, float] = BridgeConfig.workspace_low
    workspace_high: tuple[float, float, float] = BridgeConfig.workspace_high

    def __post_init__(self) -> None:
        if not (self.tau_s > 0 and self.dt_s > 0):
            raise ValueError("tau_s and dt_s must be positive")
        if not (8 <= self.width <= 1024 and 8 <= self.height <= 1024):
            raise ValueError("camera size must be within 8..1024")

    def bridge_config(self, **overrides: Any) -> BridgeConfig:
        """A :class:`BridgeConfig` that matches this robot (state size, camera, workspace)."""
        values: dict[str, Any] = {
            "name": "fake-bridge",
            "robot": "fake-point-mass",
            "task": "move the point",
            "state_dim": STATE_DIM,
            "cameras": (CAMERA,),
            "workspace_low": self.workspace_low,
            "workspace_high": self.workspace_high,
            **overrides,
        }
        return BridgeConfig(**values)


@dataclass
class FakeRobot(RobotAdapter):
    config: FakeRobotConfig = field(default_factory=FakeRobotConfig)
    commands: list[tuple[np.ndarray, float]] = field(default_factory=list)
    """Every ``(ee_target, gripper)`` received, in order."""
    stops: int = 0
    connected: bool = False
    closed: bool = False
    clock: Callable[[], float] = time.monotonic
    """The robot computer's monotonic clock, which stamps the camera frames."""

    def __post_init__(self) -> None:
        self._pos = np.asarray(self.config.start, dtype=np.float64)
        self._vel = np.zeros(3)
        self._gripper = -1.0

    def connect(self) -> None:
        self.connected = True
        self.closed = False

    def read_state(self) -> tuple[np.ndarray, np.ndarray]:
        self._require()
        state = np.concatenate([self._pos, [self._gripper], self._vel]).astype(np.float32)
        return state, self._pos.astype(np.float32)

    def read_cameras(self) -> dict[str, tuple[np.ndarray, float]]:
        self._require()
        c = self.config
        img = np.zeros((c.height, c.width, 3), np.uint8)
        img[..., 2] = 40  # a dark blue floor
        low, high = np.asarray(c.workspace_low), np.asarray(c.workspace_high)
        u, v, w = np.clip((self._pos - low) / (high - low), 0.0, 1.0)
        col, row = int(u * (c.width - 1)), int((1.0 - v) * (c.height - 1))
        r0, r1, c0, c1 = max(row - 2, 0), min(row + 3, c.height), max(col - 2, 0), min(col + 3, c.width)
        img[r0:r1, c0:c1] = (int(80 + 175 * w), int(80 + 175 * w), 0)
        return {CAMERA: (img, self.clock())}

    def send_target(self, ee_target: np.ndarray, gripper: float) -> None:
        self._require()
        target = np.asarray(ee_target, dtype=np.float64).reshape(3)
        self.commands.append((target.astype(np.float32), float(gripper)))
        alpha = 1.0 - math.exp(-self.config.dt_s / self.config.tau_s)
        step = alpha * (target - self._pos)
        self._pos = self._pos + step
        self._vel = step / self.config.dt_s
        self._gripper += alpha * (float(np.clip(gripper, -1.0, 1.0)) - self._gripper)

    def stop(self) -> None:
        self.stops += 1
        self._vel = np.zeros(3)

    def close(self) -> None:
        self.connected = False
        self.closed = True

    @property
    def position(self) -> np.ndarray:
        """The true end-effector position (for tests)."""
        return self._pos.copy()

    def _require(self) -> None:
        if not self.connected:
            raise RuntimeError("fake robot is not connected: call connect() first")
