"""Closing the console while an attempt runs: what becomes of the attempt.

The operator chooses: end it as a failure, discard it, or keep it as interrupted; or Cancel (the
window stays open). Nobody answering within :data:`ANSWER_TIMEOUT_S` keeps it as interrupted,
so a console closed by a logout or a crash of the desktop never leaves the question open and
never keeps the attempt as an ordinary episode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QMessageBox, QWidget

from takeover.app.engine.protocol import Command, CommandName

ANSWER_TIMEOUT_S = 30.0
AttemptChoice = Literal["failure", "discard", "interrupted", "cancel", "ended"]
"""The operator's answer; 'ended': the attempt ended by itself (its limit, the station's success)
while the question was open, so there is nothing left to decide."""
ENDED_CHECK_MS = 200


def ask_attempt_end(
    parent: QWidget, timeout_s: float = ANSWER_TIMEOUT_S, running: Callable[[], bool] | None = None
) -> AttemptChoice:
    """Ask (modal) what to do with the running attempt; 'interrupted' when nobody answers.
    ``running`` says whether the attempt still runs: the question goes away ('ended') when it
    does not, as an answer would then apply to nothing (or to the next attempt)."""
    box = QMessageBox(parent)
    box.setObjectName("closeAttemptBox")
    box.setWindowTitle("An attempt is running")
    box.setIcon(QMessageBox.Icon.Warning)
    box.setText("An attempt is running. What should become of it?")
    failure = box.addButton("End as failure", QMessageBox.ButtonRole.AcceptRole)
    discard = box.addButton("Discard it", QMessageBox.ButtonRole.DestructiveRole)
    interrupted = box.addButton("Keep as interrupted", QMessageBox.ButtonRole.AcceptRole)
    cancel = box.addButton("Cancel", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(interrupted)
    box.setEscapeButton(cancel)
    left_ms = [max(1, int(timeout_s * 1000))]
    step_ms = min(1000, left_ms[0])

    def tell() -> None:
        box.setInformativeText(
            "Interrupted attempts are stored with that end reason and left out of `data commit` "
            f"unless asked for.\nWithout an answer in {-(-left_ms[0] // 1000)} s it is kept as interrupted."
        )

    def tick() -> None:
        left_ms[0] -= step_ms
        if left_ms[0] <= 0:
            timer.stop()
            if interrupted is not None:
                interrupted.click()
        else:
            tell()

    tell()
    timer = QTimer(box)
    timer.setInterval(step_ms)
    timer.timeout.connect(tick)
    timer.start()
    ended = [False]

    def check_ended() -> None:
        if running is not None and not running():
            ended[0] = True
            box.done(0)

    watch = QTimer(box)
    watch.setInterval(ENDED_CHECK_MS)
    watch.timeout.connect(check_ended)
    watch.start()
    box.exec()
    timer.stop()
    watch.stop()
    if ended[0]:
        return "ended"
    clicked = box.clickedButton()
    if clicked is failure:
        return "failure"
    if clicked is discard:
        return "discard"
    if clicked is interrupted:
        return "interrupted"
    return "cancel"


def attempt_end_command(choice: AttemptChoice) -> Command | None:
    """The command that carries the choice out before the console lets go of the engine."""
    if choice == "failure":
        return Command(CommandName.STOP_EPISODE, outcome="failure")
    if choice == "discard":
        return Command(CommandName.DISCARD_EPISODE)
    if choice == "interrupted":
        return interrupted_command()
    return None


def interrupted_command() -> Command:
    """The command that ends the attempt and keeps it with the end reason 'interrupted'."""
    return Command(CommandName.INTERRUPT)
