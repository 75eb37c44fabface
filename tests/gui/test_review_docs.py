"""The review screen's documentation covers what the screen has: every key of its table, every
column, every event letter of the timeline, and its screenshots (in docs/ and the README)."""

from __future__ import annotations

from pathlib import Path

from takeover.annotation.review_model import COLUMNS
from takeover.app.gui.review.keys import KEYS
from takeover.app.gui.review.timeline import EVENT_MARKS

ROOT = Path(__file__).resolve().parents[2]


def test_the_review_doc_lists_every_key_column_and_event() -> None:
    doc = (ROOT / "docs" / "review.md").read_text()
    missing = [k.shown for k in KEYS if f"| {k.shown} | {k.meaning}" not in doc]
    missing += [c.header for c in COLUMNS if c.header not in doc]
    missing += [f"event {letter}" for letter, _ in EVENT_MARKS.values() if f"**{letter}**" not in doc]
    assert missing == []


def test_the_review_screenshots_exist_and_are_shown() -> None:
    readme = (ROOT / "README.md").read_text()
    doc = (ROOT / "docs" / "review.md").read_text()
    for name in ("review.png", "review-boundaries.png"):
        assert (ROOT / "docs" / name).stat().st_size > 100_000, name
        assert f"({name})" in doc, name
    assert "(docs/review.png)" in readme and "docs/review.md" in readme
    assert "takeover review" in readme and "bench/review.py" in readme
