"""Parameters of boundary smoothing: a frozen, validated value that is stored with every result."""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from takeover.annotation.blend import PROFILES

PAUSE_KINDS = ("takeover", "handback")


class ParamsError(ValueError):
    """Smoothing parameters a person must fix (the message says which and how)."""


@dataclass(frozen=True)
class SmoothingParams:
    """How boundary smoothing decides what to remove and what to blend.

    The defaults suit the simulated Sawyer station: actions are (dx, dy, dz, gripper) in [-1, 1],
    and the state starts with the end-effector position in metres.
    """

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

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (tuples become lists), in field order."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    def digest(self) -> str:
        """sha256 of the canonical JSON: equal parameters, equal digest."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SmoothingParams:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ParamsError(f"unknown smoothing parameter(s) {unknown}; known: {sorted(known)}")
        try:
            return cls(**values)
        except TypeError as exc:  # e.g. a string where a list was expected
            raise ParamsError(f"invalid smoothing parameters: {exc}") from None


def load_params(path: Path | str) -> SmoothingParams:
    """Read parameters from a TOML file: top-level keys, or a ``[smoothing]`` table."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"parameter file {p} does not exist") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ParamsError(f"cannot read parameter file {p}: {exc}") from None
    table = data.get("smoothing", data)
    if "smoothing" in data and len(data) > 1:
        raise ParamsError(f"{p}: put every parameter in the [smoothing] table, found {sorted(data)}")
    if not isinstance(table, dict):
        raise ParamsError(f"{p}: [smoothing] must be a table")
    try:
        return SmoothingParams.from_dict(table)
    except ParamsError as exc:
        raise ParamsError(f"{p}: {exc}") from None
