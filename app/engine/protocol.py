"""Messages between the engine (control loop process) and its views (the GUI).

The engine publishes :class:`Status` on a PUB socket (about 15 Hz, latest camera frame
included) and answers :class:`Command` on a ROUTER socket with :class:`CommandReply` or an error
reply saying why the command was refused. All are typed messages
(:mod:`takeover.app.net.messages`): exact fields, exact types.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np

from takeover.app.net.messages import Message, Reply, Request

MAX_KEYS = 16
MAX_KEY_NAME = 32
MAX_COMMAND_BYTES = 64 * 1024
"""Commands are tiny; anything bigger is refused by the socket itself."""


class CommandName(enum.StrEnum):
    START_EPISODE = "start_episode"
    STOP_EPISODE = "stop_episode"
    """End the running attempt; ``outcome`` is 'success', 'failure' or '' (the station's flag decides)."""
    DISCARD_EPISODE = "discard_episode"
    TAKEOVER = "takeover"
    HANDBACK = "handback"
    HOLD = "hold"
    RESUME = "resume"
    ESTOP = "estop"
    """Latched emergency stop: the robot is held until RESET_ESTOP."""
    RESET_ESTOP = "reset_estop"
    """Leave a latched e-stop; the robot is then held (HOLD) until someone takes over or hands back."""
    KEYS = "keys"
    """Keyboard teleop: ``keys`` is the list of key names currently held down."""
    QUIT = "quit"


Outcome = Literal["", "success", "failure"]
"""What the operator says of an attempt ('' leaves it to the station's success flag)."""


@dataclass(frozen=True)
class Command(Request):
    TYPE: ClassVar[str] = "command"
    name: CommandName
    outcome: Outcome = ""
    keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.keys) > MAX_KEYS or not all(0 < len(k) <= MAX_KEY_NAME for k in self.keys):
            raise ValueError(f"'keys' must be at most {MAX_KEYS} names of 1 to {MAX_KEY_NAME} characters")


@dataclass(frozen=True)
class CommandReply(Reply):
    """The command was taken (a refused one gets an error reply with the reason)."""

    TYPE: ClassVar[str] = "reply"


@dataclass(frozen=True)
class Status(Message):
    TYPE: ClassVar[str] = "status"
    t: float
    mode: str
    """'AUTONOMOUS', 'HUMAN', 'RAMP', 'HOLD', 'ESTOP' or 'IDLE'."""
    episode_active: bool
    episode_id: str
    step: int
    episodes_done: int
    success: bool
    """The station's success flag right now."""
    message: str = ""
    """Last thing worth telling the operator (errors, 'episode saved', ...)."""
    camera: str = ""
    image: np.ndarray | None = None
    timing: dict[str, float] = field(default_factory=dict)
    """Control-loop figures: 'period_ms', 'overruns', ..."""
    previews: dict[str, np.ndarray] = field(default_factory=dict)
    """Small live frames of the free-running cameras, by name (only cameras with a fresh frame)."""
    camera_health: dict[str, str] = field(default_factory=dict)
    """Every free-running camera by name: 'ok', or what is wrong with it ('DOWN 3.1 s, ...')."""
