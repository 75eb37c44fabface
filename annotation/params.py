"""Parameters of boundary smoothing: a frozen, validated value that is stored with every result."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from takeover.annotation.blend import PROFILES
from takeover.annotation.param_files import CanonicalParams, ParamsError

__all__ = ["PAUSE_KINDS", "ParamsError", "SmoothingParams", "load_params"]

PAUSE_KINDS = ("takeover", "handback")


@dataclass(frozen=True)
class SmoothingParams(CanonicalParams):
    """How boundary smoothing decides what to remove and what to blend.

    The defaults suit the simulated Sawyer station: actions are (dx, dy, dz, gripper) in [-1, 1],
    and the state starts with the end-effector position in metres.
    """

    TABLE: ClassVar[str] = "smoothing"

    motion_action_dims: tuple[int, ...] = (0, 1, 2)
    """Action components that move the robot (checked for idleness, blended at jumps)."""
    position_state_dims: tuple[int, ...] = (0, 1, 2)
    """State components holding the end-effector position."""
    idle_action_threshold: float = 0.02
    """A step is idle when every motion component of its action is at most this (absolute)."""
    idle_position_threshold: float = 0.005
    """A pause is only removed if the position stayed within this distance (m) of where it was
    at the boundary for the whole pause."""
    max_pause_s: float = 1.5
    """Idle runs longer than this are not hand-over pauses: they are left as recorded."""
    pause_kinds: tuple[str, ...] = PAUSE_KINDS
    """Boundary kinds after which an idle run is removed."""
    action_jump_threshold: float = 0.5
    """A jump is a change of any motion component larger than this between the last action
    before a boundary and the first after it."""
    blend_window: int = 5
    """Steps after the boundary whose actions are blended from the previous action (0: no blend)."""
    blend_profile: str = "minimum_jerk"
    position_jump_threshold: float = 0.02
    """Position jumps (m) across a boundary larger than this are reported (the state is an
    observation and is never changed)."""
    frame_window: int = 5
    """Steps on each side of a boundary in which stalled or duplicated camera frames are dropped."""
    max_time_shift_s: float = 3.0
    """No sample of the derived episode is moved in time by more than this (relative to the raw
    recording); pause removal is cut short to respect it."""

    def __post_init__(self) -> None:
        for name in ("motion_action_dims", "position_state_dims", "pause_kinds"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        for name in ("motion_action_dims", "position_state_dims"):
            dims = getattr(self, name)
            if not dims or any(not isinstance(d, int) or isinstance(d, bool) or d < 0 for d in dims):
                raise ParamsError(f"{name} must list one or more component indices >= 0, got {dims!r}")
            if len(set(dims)) != len(dims):
                raise ParamsError(f"{name} lists a component twice: {dims!r}")
        for name in (
            "idle_action_threshold",
            "idle_position_threshold",
            "max_pause_s",
            "action_jump_threshold",
            "position_jump_threshold",
            "max_time_shift_s",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ParamsError(f"{name} must be a finite number, got {value!r}")
            if value < 0:
                raise ParamsError(f"{name} must be >= 0, got {value!r}")
            object.__setattr__(self, name, float(value))
        for name in ("blend_window", "frame_window"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1000:
                raise ParamsError(f"{name} must be a whole number of steps in 0..1000, got {value!r}")
        if self.blend_profile not in PROFILES:
            raise ParamsError(f"blend_profile must be one of {list(PROFILES)}, got {self.blend_profile!r}")
        unknown = [k for k in self.pause_kinds if k not in PAUSE_KINDS]
        if unknown:
            raise ParamsError(f"pause_kinds may name {list(PAUSE_KINDS)}, got {unknown}")
        if not self.action_jump_threshold > 2 * self.idle_action_threshold:
            raise ParamsError(
                "action_jump_threshold must be more than twice idle_action_threshold "
                f"(got {self.action_jump_threshold} and {self.idle_action_threshold}), so a blended "
                "first action can stay clear of both"
            )


def load_params(path: Path | str) -> SmoothingParams:
    """Read parameters from a TOML file: top-level keys, or a ``[smoothing]`` table."""
    return SmoothingParams.load(path)
