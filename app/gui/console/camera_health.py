"""The caption above a free-running camera's preview: its name, and in red when it is down.

The engine's status says for every free-running camera 'ok' or what is wrong with it
('DOWN 3.1 s, reconnecting (attempt 4): <why>'). The caption shows the headline (before the
first ': ') next to the camera's NO SIGNAL view, and the whole text as its tooltip.
"""

from __future__ import annotations

from PyQt6.QtWidgets import QLabel, QSizePolicy, QWidget

HEALTHY = "ok"
DOWN_STYLE = "QLabel#cameraDown { background: #c62828; color: white; font-weight: bold; padding: 0 4px; }"


def caption_text(name: str, health: str) -> str:
    """What the caption says: the camera's name, and the headline of what is wrong with it."""
    if health == HEALTHY:
        return f"camera: {name}"
    headline = health.partition(": ")[0]
    return f"camera: {name} — {headline}"


class CameraCaption(QLabel):
    """A preview's caption; :meth:`set_health` turns it red while the camera is down."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(caption_text(name, HEALTHY), parent)
        self.name = name
        self.health = HEALTHY
        self.setObjectName("cameraCaption")
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    @property
    def down(self) -> bool:
        return self.health != HEALTHY

    def set_health(self, health: str) -> None:
        if health == self.health:
            return
        self.health = health
        self.setText(caption_text(self.name, health))
        self.setToolTip("" if health == HEALTHY else health)
        self.setObjectName("cameraCaption" if health == HEALTHY else "cameraDown")
        self.setStyleSheet("" if health == HEALTHY else DOWN_STYLE)
