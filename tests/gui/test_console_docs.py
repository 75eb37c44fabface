"""The console's documentation covers what the console has: every key of the shortcut table,
every button of the real window, every mode, and a screenshot of every state."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from PyQt6.QtWidgets import QPushButton

from takeover.app.gui.console.shortcuts import SHORTCUTS, TELEOP_KEYS
from takeover.app.gui.console.window import MODE_COLORS

pytestmark = pytest.mark.gui

ROOT = Path(__file__).resolve().parents[2]
STATES = ("idle", "autonomous", "human", "hold", "estop", "labelling", "failed-start", "settings", "help")


def test_console_doc_lists_every_key_button_and_mode(console: Any) -> None:
    doc = (ROOT / "docs" / "console.md").read_text()
    missing = [s.key for s in SHORTCUTS if f"| {s.key} |" not in doc and f"**{s.key}**" not in doc]
    missing += [key for key, _ in TELEOP_KEYS if f"| {key} |" not in doc]
    button_texts = {b.text() for b in console.findChildren(QPushButton)} | {
        b.text() for b in console.problem_panel.findChildren(QPushButton)
    }
    for text in button_texts:
        name = re.sub(r"\s*\(F\d+\)$", "", text).rstrip("…")
        if name not in ("Close",) and name not in doc:
            missing.append(text)
    missing += [f"mode {mode}" for mode in MODE_COLORS if f"**{mode}**" not in doc]
    assert missing == []


def test_screenshots_of_every_state_exist_and_are_shown() -> None:
    readme = (ROOT / "README.md").read_text()
    doc = (ROOT / "docs" / "console.md").read_text()
    for state in STATES:
        name = f"console-{state}.png"
        assert (ROOT / "docs" / name).stat().st_size > 10_000, name
        assert name in readme or name in doc, name
    for words in (
        "RAMP",
        "IDLE",
        "ESTOP",
        "Hold",
        "Resume",
        "E-STOP",
        "Reset e-stop",
        "limit",
        "`control_source` 3",
    ):
        assert words in readme, words
