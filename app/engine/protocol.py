"""Messages between the engine (control loop process) and its views (the GUI).

The engine publishes :class:`Status` on a PUB socket (about 15 Hz, latest camera frame
included) and answers :class:`Command` on a REP socket. Both use :mod:`takeover.app.net.wire`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from takeover.app.net import wire

STATUS_TYPE = "status"
COMMAND_TYPE = "command"


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


@dataclass(frozen=True)
class Command:
    name: CommandName
    outcome: str = ""
    keys: tuple[str, ...] = ()

    def encode(self) -> bytes:
        return wire.encode(
            {"type": COMMAND_TYPE, "name": self.name.value, "outcome": self.outcome, "keys": list(self.keys)}
        )

    @staticmethod
    def decode(payload: bytes) -> Command:
        msg = wire.decode(payload, expect_type=COMMAND_TYPE)
        try:
            name = CommandName(msg["name"])
        except (KeyError, ValueError) as exc:
            raise wire.WireError(f"unknown command {msg.get('name')!r}") from exc
        outcome = msg.get("outcome", "")
        if not isinstance(outcome, str) or outcome not in ("", "success", "failure"):
            raise wire.WireError(f"outcome must be 'success', 'failure' or '', got {outcome!r}")
        keys = msg.get("keys", [])
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise wire.WireError("keys must be a list of strings")
        return Command(name=name, outcome=outcome, keys=tuple(keys))


@dataclass(frozen=True)
class Status:
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

    def encode(self) -> bytes:
        body: dict[str, Any] = {
            "type": STATUS_TYPE,
            "t": self.t,
            "mode": self.mode,
            "episode_active": self.episode_active,
            "episode_id": self.episode_id,
            "step": self.step,
            "episodes_done": self.episodes_done,
            "success": self.success,
            "message": self.message,
            "camera": self.camera,
            "timing": self.timing,
        }
        if self.image is not None:
            body["image"] = self.image
        if self.previews:
            body["previews"] = self.previews
        if self.camera_health:
            body["camera_health"] = self.camera_health
        return wire.encode(body)

    @staticmethod
    def decode(payload: bytes) -> Status:
        m = wire.decode(payload, expect_type=STATUS_TYPE)
        try:
            return Status(
                t=float(m["t"]),
                mode=str(m["mode"]),
                episode_active=bool(m["episode_active"]),
                episode_id=str(m["episode_id"]),
                step=int(m["step"]),
                episodes_done=int(m["episodes_done"]),
                success=bool(m["success"]),
                message=str(m.get("message", "")),
                camera=str(m.get("camera", "")),
                image=m.get("image"),
                timing=dict(m.get("timing", {})),
                previews=_previews(m.get("previews", {})),
                camera_health=_camera_health(m.get("camera_health", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise wire.WireError(f"malformed status: {exc}") from exc


def _previews(value: Any) -> dict[str, np.ndarray]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, np.ndarray) for k, v in value.items()
    ):
        raise ValueError("previews must map camera names to arrays")
    return dict(value)


def _camera_health(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError("camera_health must map camera names to text")
    return dict(value)
