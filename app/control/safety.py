"""Safety limits on the commanded action and the watchdog thresholds of the control loop.

:class:`ActionLimits` is the last thing an action passes before it is sent to the station:

- an action with NaN or Inf is *refused*: the robot is held (and the loop records why);
- each component is clipped to the station's action range;
- the step of the commanded end-effector target (``delta * ee_delta_scale`` metres) is scaled
  down to at most ``max_step_m``;
- the next commanded target is kept inside the workspace box: the delta is cut so that the
  target stops at the wall (motion along the wall is still allowed).

Limits that clamp report a reason, so the loop can record an event when a limit starts to act.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from takeover.app.station.base import StationInfo


@dataclass(frozen=True)
class SafetyConfig:
    ee_delta_scale: float = 0.01
    """Metres of end-effector motion per unit of the delta action (Meta-World: 1 cm)."""
    max_step_m: float = 0.02
    """Largest step of the commanded end-effector target per period (metres)."""
    x_min: float = -math.inf
    x_max: float = math.inf
    y_min: float = -math.inf
    y_max: float = math.inf
    z_min: float = -math.inf
    z_max: float = math.inf
    """Workspace box of the commanded end-effector target (metres, the station's frame)."""
    policy_timeout_ms: float = 500.0
    """Policy watchdog: a chunk that takes longer than this to arrive holds the robot."""
    station_timeout_ms: float = 500.0
    """Station watchdog: an act/observe slower than this holds the robot."""
    teleop_stale_ms: float = 250.0
    """Teleop watchdog: while the human drives, no fresh device command for this long holds the robot."""

    def __post_init__(self) -> None:
        if not self.ee_delta_scale > 0:
            raise ValueError(f"ee_delta_scale must be positive, got {self.ee_delta_scale}")
        if not self.max_step_m > 0:
            raise ValueError(f"max_step_m must be positive, got {self.max_step_m}")
        for axis in "xyz":
            lo, hi = getattr(self, f"{axis}_min"), getattr(self, f"{axis}_max")
            if not lo < hi:
                raise ValueError(f"workspace {axis}_min ({lo}) must be below {axis}_max ({hi})")
        for name in ("policy_timeout_ms", "station_timeout_ms", "teleop_stale_ms"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def workspace_low(self) -> np.ndarray:
        return np.array([self.x_min, self.y_min, self.z_min], dtype=np.float64)

    @property
    def workspace_high(self) -> np.ndarray:
        return np.array([self.x_max, self.y_max, self.z_max], dtype=np.float64)


@dataclass(frozen=True)
class Checked:
    """The outcome of :meth:`ActionLimits.check`."""

    action: np.ndarray
    """The action to send (the hold action if refused)."""
    refused: str = ""
    """Why the action was refused (empty if it was not)."""
    clamped: tuple[str, ...] = field(default_factory=tuple)
    """Which limits changed the action: 'step', 'workspace'."""
    detail: str = ""


class ActionLimits:
    """Checks and limits end-effector delta actions ``(dx, dy, dz, ..., gripper)``."""

    def __init__(
        self,
        config: SafetyConfig,
        low: np.ndarray,
        high: np.ndarray,
        station_box: tuple[Sequence[float], Sequence[float]] | None = None,
    ) -> None:
        """``low`` / ``high``: the station's action range. ``station_box``: the box the station keeps
        its target in, if it says; the target is then kept inside both boxes."""
        self.config = config
        self.low = np.asarray(low, dtype=np.float64)
        self.high = np.asarray(high, dtype=np.float64)
        self._box_lo = config.workspace_low
        self._box_hi = config.workspace_high
        if station_box is not None:
            self._box_lo = np.maximum(self._box_lo, np.asarray(station_box[0], dtype=np.float64))
            self._box_hi = np.minimum(self._box_hi, np.asarray(station_box[1], dtype=np.float64))
            if not np.all(self._box_lo < self._box_hi):
                raise ValueError(
                    f"the configured workspace box and the station's ({list(station_box[0])} .. "
                    f"{list(station_box[1])}) do not overlap"
                )

    @classmethod
    def for_station(cls, config: SafetyConfig, info: StationInfo) -> ActionLimits:
        """The limits for ``info``'s action range and workspace box (if it has one)."""
        box = None
        if info.workspace_low is not None and info.workspace_high is not None:
            box = (info.workspace_low, info.workspace_high)
        return cls(config, np.asarray(info.action_low), np.asarray(info.action_high), box)

    def check(self, action: np.ndarray, ee_target: np.ndarray, hold: np.ndarray) -> Checked:
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self.low.shape:
            return Checked(hold, refused=f"action has shape {a.shape}, the station takes {self.low.shape}")
        if not np.all(np.isfinite(a)):
            return Checked(hold, refused=f"action is not finite: {np.round(a, 4).tolist()}")
        a = np.clip(a, self.low, self.high)
        scale = self.config.ee_delta_scale
        step = a[:3] * scale
        clamped: list[str] = []
        details: list[str] = []
        norm = float(np.linalg.norm(step))
        if norm > self.config.max_step_m:
            step *= self.config.max_step_m / norm
            clamped.append("step")
            details.append(f"step {1000 * norm:.1f} mm > {1000 * self.config.max_step_m:.1f} mm")
        target = np.asarray(ee_target, dtype=np.float64)
        if np.all(np.isfinite(target)):
            nxt = target + step
            # Stop at the wall; a target already outside may move back in (or stay), never further out.
            inside = np.clip(nxt, np.minimum(target, self._box_lo), np.maximum(target, self._box_hi))
            if np.any(np.abs(inside - nxt) > 1e-12):
                axes = "".join("xyz"[i] for i in range(3) if abs(inside[i] - nxt[i]) > 1e-12)
                clamped.append("workspace")
                details.append(f"workspace wall on {axes}")
                step = inside - target
        a[:3] = step / scale
        return Checked(a.astype(np.float32), clamped=tuple(clamped), detail="; ".join(details))
