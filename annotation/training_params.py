"""Parameters of the derived training labels: a frozen, validated value stored with every result."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from takeover.annotation.param_files import CanonicalParams, ParamsError

TRAINING_LABELS_VERSION = 1
"""The version of the derivation code (:mod:`takeover.annotation.training_labels`). It is a
parameter, so results of another version of the code never share a digest with these."""

BASELINE = "baseline"
"""``value_source`` for the value estimate computed from the batch (see ``docs/training_labels.md``)."""

PRE_WINDOW_UNITS = ("s", "steps")


@dataclass(frozen=True)
class TrainingLabelParams(CanonicalParams):
    """How control-source classes, value targets and the improvement indicator are derived."""

    TABLE: ClassVar[str] = "training_labels"

    pre_window: float = 1.0
    """Length of the pre-intervention window before each takeover, in ``pre_window_unit``."""
    pre_window_unit: str = "s"
    """'s' (converted to steps at each episode's rate, rounded to the nearest step) or 'steps'."""
    horizon_steps: int = 0
    """The episode length that maps to a value of -1 before penalties (0: the longest episode of
    the batch). An episode longer than a horizon given here is refused."""
    failure_penalty: float = 2.0
    """Subtracted from every value target of a failure; at least 1, so every failure step is below
    every success step of the batch."""
    near_success_fraction: float = 0.5
    """A near-success gets this fraction of the failure penalty (0: counted as a success, 1: as a
    failure). Its steps lie strictly between every success and every failure step when both
    ``fraction * penalty`` and ``(1 - fraction) * penalty`` are at least 1."""
    value_source: str = BASELINE
    """The value estimate the advantage is taken against: 'baseline', or the name of a recorded
    policy-output stream (e.g. 'policy.value'); episodes without that stream use the baseline."""
    baseline_points: int = 101
    """Points of normalised progress (evenly spaced from 0 to 1) at which the baseline averages
    the value targets of the batch."""
    advantage_lookahead: int = 0
    """N of the N-step advantage; 0: to the end of the episode (no bootstrap)."""
    positive_fraction: float = 0.3
    """The fraction of the batch's non-human steps the threshold makes positive."""
    version: int = TRAINING_LABELS_VERSION

    def __post_init__(self) -> None:
        for name in ("pre_window", "failure_penalty", "near_success_fraction", "positive_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ParamsError(f"{name} must be a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.pre_window_unit not in PRE_WINDOW_UNITS:
            raise ParamsError(
                f"pre_window_unit must be one of {list(PRE_WINDOW_UNITS)}, got {self.pre_window_unit!r}"
            )
        if self.pre_window < 0 or (self.pre_window_unit == "steps" and not self.pre_window.is_integer()):
            raise ParamsError(
                "pre_window must be >= 0 (a whole number of steps when the unit is steps), "
                f"got {self.pre_window!r}"
            )
        if self.failure_penalty < 1:
            raise ParamsError(
                f"failure_penalty must be >= 1 so failures stay below successes, got {self.failure_penalty}"
            )
        for name in ("near_success_fraction", "positive_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ParamsError(f"{name} must be within 0..1, got {getattr(self, name)}")
        for name, low, high in (
            ("horizon_steps", 0, 10**9),
            ("baseline_points", 2, 100_000),
            ("advantage_lookahead", 0, 10**9),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ParamsError(f"{name} must be a whole number in {low}..{high}, got {value!r}")
        if not isinstance(self.value_source, str) or not self.value_source.strip():
            raise ParamsError(f"value_source must be 'baseline' or a stream name, got {self.value_source!r}")
        if self.version != TRAINING_LABELS_VERSION:
            raise ParamsError(
                f"version {self.version!r} is not what this code computes ({TRAINING_LABELS_VERSION}); "
                "remove it from the parameter file or set it to that"
            )

    def pre_window_steps(self, rate_hz: float) -> int:
        """The pre-intervention window in steps for an episode recorded at ``rate_hz``."""
        if self.pre_window_unit == "steps":
            return int(self.pre_window)
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"a window in seconds needs a positive episode rate, got {rate_hz!r} Hz")
        return math.floor(self.pre_window * rate_hz + 0.5)

    @property
    def near_success_penalty(self) -> float:
        return self.near_success_fraction * self.failure_penalty

    @property
    def bands_separated(self) -> bool:
        """True when every near-success step lies strictly between every success and every failure
        step of the batch (not only at equal steps-to-go)."""
        return self.near_success_penalty >= 1.0 and self.failure_penalty - self.near_success_penalty >= 1.0
