"""The control loop's configuration (the ``[loop]`` table of the configuration file, docs/config.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

from takeover.app.control.safety import SafetyConfig

DEFAULT_MAX_STEPS = 200
"""An attempt's step limit when neither the configuration nor the station sets one."""


@dataclass(frozen=True)
class LoopConfig:
    rate_hz: float = 20.0
    max_steps: int = 0
    """Periods an attempt may run, held periods not counted. 0: from the task's time limit (the
    station's ``time_limit_s`` times ``rate_hz``), or :data:`DEFAULT_MAX_STEPS` when the station
    gives none."""
    open_loop_steps: int = 4
    """How many actions of a chunk are executed before the policy is asked again."""
    inference_lead_steps: int = 0
    """0: ask the policy for its next chunk in the period the open-loop window runs out, and wait
    for it there. n >= 1: ask on a worker thread n periods before that and keep executing the
    current chunk while the answer travels (for a policy server whose answer takes periods)."""
    human_gain: float = 1.0
    """Scale from device twist (-1..1) to the station's end-effector delta action."""
    end_on_success: bool = True
    paced: bool = True
    """False runs as fast as the station allows (data generation); time stamps stay honest."""
    ramp_steps: int = 10
    """Hand-back window: periods over which the policy's action is blended in (0 = at once)."""
    takeover_blend_steps: int = 2
    """Periods over which the human's action replaces the last executed one at takeover (0 = at once)."""
    splice_steps: int = 2
    """First actions of a new policy chunk blended with what the previous chunk had planned."""
    handback_speed_cap: bool = True
    """Through a hand-back, cap the end-effector speed at the fastest the commanded target moved in
    the last half second, then let the cap rise until the policy's action fits under it (see
    :class:`~takeover.app.control.blending.SpeedEnvelope`); RAMP lasts until the cap lets go."""
    max_held_s: float = 300.0
    """In attempts a person watches (the console), held time (HOLD, ESTOP) does not count against
    the limit, up to this much; beyond it, held periods count too, so an attempt nobody resumes
    still ends. Unattended (headless) attempts count held time from the start."""
    safety: SafetyConfig = field(default_factory=SafetyConfig)

    def attempt_steps(self, time_limit_s: float) -> int:
        """The step limit of an attempt at a task whose time limit is ``time_limit_s`` (0: none)."""
        if self.max_steps:
            return self.max_steps
        if time_limit_s > 0:
            return max(1, round(time_limit_s * self.rate_hz))
        return DEFAULT_MAX_STEPS

    def __post_init__(self) -> None:
        if not self.rate_hz > 0:
            raise ValueError(f"rate_hz must be positive, got {self.rate_hz}")
        if self.max_steps < 0:
            raise ValueError(f"max_steps must be at least 1 (or 0: the task's limit), got {self.max_steps}")
        if self.open_loop_steps < 1:
            raise ValueError(f"open_loop_steps must be at least 1, got {self.open_loop_steps}")
        if not 0.0 <= self.max_held_s < float("inf"):
            raise ValueError(f"max_held_s must be 0 or more seconds, got {self.max_held_s}")
        for name in ("ramp_steps", "takeover_blend_steps", "splice_steps", "inference_lead_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
