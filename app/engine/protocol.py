"""Messages between the engine (control loop process) and its views (the GUI).

The engine publishes :class:`Status` on a PUB socket (about 15 Hz), camera frames
(:class:`Frame`) on another PUB socket at the camera rate (named in ``Status.frames``), and
answers :class:`Command` on a ROUTER socket with :class:`CommandReply` or an error reply saying
why the command was refused. All are typed messages (:mod:`takeover.app.net.messages`): exact
fields, exact types.
"""

from __future__ import annotations

import enum
import math
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
    """End the running attempt; ``outcome`` is 'success', 'near_success', 'failure' or '' (the
    station's flag decides); ``note`` is stored with the operator's verdict."""
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
    ATTACH = "attach"
    """Claim the engine for the console named in ``viewer``, and keep the claim: an attached
    console repeats it every second (:mod:`takeover.app.engine.viewers`). The reply is an
    :class:`AttachReply`, granted or not."""
    DETACH = "detach"
    """The console named in ``viewer`` lets go; the engine and its attempt keep running."""
    INTERRUPT = "interrupt"
    """End the running attempt and keep it with end reason 'interrupted' (the console closes and
    nobody said how it went); ``takeover data commit`` leaves such attempts out by default."""
    RERECORD = "rerecord"
    """Record the attempt again: the running one is discarded (or, between attempts, the latest
    one is left as it was) and an attempt starts with the same seed."""
    RETRY = "retry"
    """After a failed start (``readiness`` 'failed'): start the station, policy and devices again."""
    USE_KEYBOARD = "use_keyboard"
    """After a failed start: start again with the keyboard as the operator's device (no SpaceMouse)."""
    SESSION = "session"
    """Who works and on what: ``operator`` (stored as the operator of each attempt from the next one
    on; '' keeps the current one) and ``task`` (the session's task in the operator's words, stored in
    each attempt's ``extra['session_task']``; '' keeps it). Shown back in ``Status.session``."""
    DEPLOY = "deploy"
    """Between attempts: the engine's policy server serves the checkpoint at ``checkpoint`` (a path
    on the engine's machine) from the next attempt on; refused while an attempt runs. Taken from
    any sender (it does not drive the robot), so `takeover policy deploy` works beside a console."""
    VALUE_ALERT = "value_alert"
    """Alert the operator while the policy's value estimate is below ``value_alert`` during an
    attempt (None: no alert), from now on; shown back in ``Status.value_alert``. Starts as
    ``[console] value_alert``; not saved to the configuration file."""


MAX_VIEWER_CHARS = 200
Outcome = Literal["", "success", "near_success", "failure"]
"""What the operator says of an attempt ('' leaves it to the station's success flag)."""
MAX_NOTE_CHARS = 2000
MAX_SESSION_CHARS = 200
MAX_CHECKPOINT_CHARS = 4096


@dataclass(frozen=True)
class Command(Request):
    TYPE: ClassVar[str] = "command"
    name: CommandName
    outcome: Outcome = ""
    keys: tuple[str, ...] = ()
    note: str = ""
    """The operator's note on the attempt (with STOP_EPISODE), stored with their verdict."""
    viewer: str = ""
    """The console sending it, as it named itself in ATTACH ('' for a sender that did not)."""
    operator: str = ""
    """With SESSION: the operator's name."""
    task: str = ""
    """With SESSION: the session's task, in the operator's words."""
    checkpoint: str = ""
    """With DEPLOY: the checkpoint file to serve, as a path on the engine's machine."""
    value_alert: float | None = None
    """With VALUE_ALERT: the threshold (a finite number), or None for no alert."""

    def __post_init__(self) -> None:
        if len(self.viewer) > MAX_VIEWER_CHARS or not self.viewer.isprintable():
            raise ValueError(f"'viewer' must be at most {MAX_VIEWER_CHARS} printable characters")
        if len(self.keys) > MAX_KEYS or not all(0 < len(k) <= MAX_KEY_NAME for k in self.keys):
            raise ValueError(f"'keys' must be at most {MAX_KEYS} names of 1 to {MAX_KEY_NAME} characters")
        if len(self.note) > MAX_NOTE_CHARS:
            raise ValueError(f"'note' must be at most {MAX_NOTE_CHARS} characters")
        for name in ("operator", "task"):
            value = getattr(self, name)
            if len(value) > MAX_SESSION_CHARS or not value.isprintable():
                raise ValueError(f"'{name}' must be at most {MAX_SESSION_CHARS} printable characters")
        if len(self.checkpoint) > MAX_CHECKPOINT_CHARS or not self.checkpoint.isprintable():
            raise ValueError(f"'checkpoint' must be at most {MAX_CHECKPOINT_CHARS} printable characters")
        if self.value_alert is not None and not math.isfinite(self.value_alert):
            raise ValueError(f"'value_alert' must be a finite number or nil, got {self.value_alert}")


@dataclass(frozen=True)
class CommandReply(Reply):
    """The command was taken (a refused one gets an error reply with the reason)."""

    TYPE: ClassVar[str] = "reply"


@dataclass(frozen=True)
class AttachReply(Reply):
    """The answer to ATTACH: whether this console now holds the engine, and what it needs to
    show it (where the status is published; the engine's configuration, read-only)."""

    TYPE: ClassVar[str] = "attached"
    granted: bool
    """True: this console holds the engine. False: another does (``holder``); this one may watch,
    hold and e-stop, nothing else."""
    holder: str
    """The console that holds the engine now."""
    status: str
    """The status endpoint as the engine bound it (a wildcard host means: the host you reached)."""
    config: str = ""
    """The engine's configuration, as TOML."""


Readiness = Literal["starting", "ready", "failed"]
"""Whether the engine can run attempts: still starting, ready, or failed to start (see ``cause``)."""


@dataclass(frozen=True)
class StartProblem:
    """Why the engine could not start, in plain words, and the ways out the console may offer."""

    cause: str
    remedies: tuple[Literal["retry", "keyboard", "settings"], ...] = ("retry", "settings")
    """'retry': send RETRY; 'keyboard': send USE_KEYBOARD; 'settings': change the configuration."""


@dataclass(frozen=True)
class AttemptClock:
    """The running attempt's clock: time held does not count against the limit."""

    elapsed_s: float
    """Time that counts against the limit (held periods excluded)."""
    limit_s: float
    """The attempt's time limit (the task's, or the configuration's)."""
    held_s: float = 0.0
    """Time spent held so far (not counted)."""

    @property
    def left_s(self) -> float:
        """Time left before the limit ends the attempt."""
        return max(0.0, self.limit_s - self.elapsed_s)


@dataclass(frozen=True)
class HealthItem:
    """One line of the health panel: a device, the policy server, the station, a camera, the
    recorder. ``level`` says how the console shows it."""

    name: str
    level: Literal["ok", "warning", "error"]
    detail: str = ""


@dataclass(frozen=True)
class SessionFigures:
    """What this console session has done so far."""

    operator: str
    task: str
    attempts: int = 0
    successes: int = 0
    near_successes: int = 0
    failures: int = 0
    interventions: int = 0
    """Takeovers over all attempts of the session."""
    first_intervention_s: tuple[float, ...] = ()
    """Per attempt with a takeover: seconds from its start to the first takeover."""


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
    readiness: Readiness = "starting"
    problem: StartProblem | None = None
    """Set when ``readiness`` is 'failed'."""
    instruction: str = ""
    """The task instruction the operator sees."""
    station: str = ""
    policy_id: str = ""
    store: str = ""
    """Where attempts are stored (shown in the title and status bar)."""
    clock: AttemptClock | None = None
    """The running attempt's clock (None between attempts)."""
    ee: np.ndarray | None = None
    """(3,) float32 end-effector position now (the first three values of the station's state), for
    the state plot."""
    gripper_closed: bool | None = None
    """The gripper as last commanded (the action's fourth value above 0: closed; None when the
    action has no gripper)."""
    health: tuple[HealthItem, ...] = ()
    session: SessionFigures | None = None
    viewer: str = ""
    """The console attached to the engine ('' while none is)."""
    cameras: tuple[str, ...] = ()
    """The station's cameras, in the order of its configuration (the console shows their views in
    this order, each with NO SIGNAL until its first frame)."""
    frames: str = ""
    """Where the engine publishes camera frames (:class:`Frame`), as it bound it ('' if it does not)."""
    value: float | None = None
    """The policy's latest value estimate in this attempt (None: none yet, or a policy without a
    value model); it arrives with each chunk (docs/policy.md, "The value estimate")."""
    value_alert: float | None = None
    """``[console] value_alert``: the console alerts while ``value`` is below it in an attempt."""


MAX_FRAME_HEIGHT = 480
"""Frames taller than this are subsampled by a whole stride before they are published."""


@dataclass(frozen=True)
class Frame(Message):
    """One camera frame for the live view, on the engine's frame socket (at the camera rate,
    separate from the status stream)."""

    TYPE: ClassVar[str] = "frame"
    camera: str
    seq: int
    """1, 2, ... per camera: the view counts distinct numbers, not repaints."""
    t: float
    """Monotonic capture time on the engine's clock (a rendered camera: the time of the state it shows)."""
    image: np.ndarray
    """(H, W, 3) uint8 RGB, at most :data:`MAX_FRAME_HEIGHT` rows."""
