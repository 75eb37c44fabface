"""The transport under the timeline: step buttons, play at 0.5×/1×/2×, the step number, the time.

It asks the window to move the cursor (``seek``) and shows where the window put it
(:meth:`Transport.show_step`). Playing keeps the recording's pace: a timer ticks every
:data:`PLAY_TICK_MS` and asks for the step the elapsed time has reached (its rate times the
speed), so a slow frame never slows the clock, it only skips frames.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QWidget

from takeover.annotation.review_episode import ReviewEpisode
from takeover.app.gui.review.fields import NumberField
from takeover.app.gui.review.keys import key_of

SPEEDS = (0.5, 1.0, 2.0)
PLAY_TICK_MS = 10
PLAY_TEXT = "▶  Play"
PAUSE_TEXT = "❚❚  Pause"


class Transport(QWidget):
    """Buttons and fields that move the cursor; ``seek(step)`` asks the window to."""

    seek = pyqtSignal(int)

    def __init__(self) -> None:
        super().__init__()
        self.episode: ReviewEpisode | None = None
        self.at_step = 0
        """Where the window last put the cursor."""
        self.speed = SPEEDS.index(1.0)
        """Index into :data:`SPEEDS`."""
        self._play_from: tuple[float, int] | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(PLAY_TICK_MS)
        self._timer.timeout.connect(self._tick)
        self.play_button = self._button(PLAY_TEXT, self.toggle_play)
        self.speed_box = QComboBox()
        self.speed_box.addItems([f"{s:g}×" for s in SPEEDS])
        self.speed_box.setCurrentIndex(self.speed)
        self.speed_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.speed_box.currentIndexChanged.connect(self._set_speed)
        self.step_box = NumberField()
        self.step_box.setFixedWidth(90)
        self.step_box.setRange(0, 0)
        self.step_box.editingFinished.connect(lambda: self.seek.emit(self.step_box.value()))
        self.step_total = QLabel("/ 0")
        self.time_value = QLabel("—")
        self.time_value.setObjectName("timeValue")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        for text, handler in (
            ("|◀", self.first),
            ("◀ 1 s", lambda: self.step_by(-self.second())),
            ("◀", lambda: self.step_by(-1)),
        ):
            row.addWidget(self._button(text, handler))
        row.addWidget(self.play_button)
        for text, handler in (
            ("▶", lambda: self.step_by(1)),
            ("1 s ▶", lambda: self.step_by(self.second())),
            ("▶|", self.last),
        ):
            row.addWidget(self._button(text, handler))
        row.addWidget(self.speed_box)
        row.addSpacing(16)
        row.addWidget(QLabel(f"step ({key_of('goto').shown})"))
        row.addWidget(self.step_box)
        row.addWidget(self.step_total)
        row.addSpacing(16)
        row.addWidget(self.time_value)
        row.addStretch(1)

    @staticmethod
    def _button(text: str, handler: Callable[[], None]) -> QPushButton:
        button = QPushButton(text)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        button.clicked.connect(lambda _checked=False: handler())
        return button

    def set_episode(self, episode: ReviewEpisode | None) -> None:
        self.stop_play()
        self.episode = episode
        last = episode.last_step if episode is not None else 0
        self.step_box.blockSignals(True)
        self.step_box.setRange(0, last)
        self.step_box.blockSignals(False)
        self.step_total.setText(f"/ {last}")
        if episode is None:
            self.time_value.setText("—")

    def show_step(self, step: int) -> None:
        """The window put the cursor on ``step``."""
        self.at_step = step
        ep = self.episode
        self.step_box.blockSignals(True)
        self.step_box.setValue(step)
        self.step_box.blockSignals(False)
        if ep is not None:
            self.time_value.setText(f"{ep.time_of(step):.2f} s of {ep.time_of(ep.last_step):.2f} s")

    # -- moving -------------------------------------------------------------------------------
    def second(self) -> int:
        return self.episode.steps_per_second if self.episode is not None else 1

    def step_by(self, steps: int) -> None:
        self.stop_play()
        self.seek.emit(self.at_step + steps)

    def first(self) -> None:
        self.stop_play()
        self.seek.emit(0)

    def last(self) -> None:
        self.stop_play()
        self.seek.emit(self.episode.last_step if self.episode is not None else 0)

    def goto(self) -> None:
        """Put the keys in the step number: type it, Enter."""
        self.step_box.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.step_box.selectAll()

    # -- playing ------------------------------------------------------------------------------
    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    def toggle_play(self) -> None:
        if self.playing:
            self.stop_play()
            return
        if self.episode is None:
            return
        if self.at_step >= self.episode.last_step:
            self.seek.emit(0)
        self._play_from = (time.monotonic(), self.at_step)
        self._timer.start()
        self.play_button.setText(PAUSE_TEXT)

    def stop_play(self) -> None:
        self._timer.stop()
        self.play_button.setText(PLAY_TEXT)

    def faster(self) -> None:
        self.speed_box.setCurrentIndex(min(len(SPEEDS) - 1, self.speed + 1))

    def slower(self) -> None:
        self.speed_box.setCurrentIndex(max(0, self.speed - 1))

    def _set_speed(self, index: int) -> None:
        self.speed = index
        if self.playing:
            self._play_from = (time.monotonic(), self.at_step)

    def _tick(self) -> None:
        ep = self.episode
        if ep is None or self._play_from is None:
            self.stop_play()
            return
        began, from_step = self._play_from
        step = min(
            ep.last_step, from_step + int((time.monotonic() - began) * ep.record.rate_hz * SPEEDS[self.speed])
        )
        if step != self.at_step:
            self.seek.emit(step)
        if step >= ep.last_step:
            self.stop_play()
