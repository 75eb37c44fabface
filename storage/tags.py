"""Tag names: what a tag may be called, and the messages about tags a person reads."""

from __future__ import annotations

import difflib
import re

from takeover.storage.errors import StorageError

_TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/+]{0,127}$")


def check_tag_name(name: str) -> None:
    if not _TAG_RE.match(name):
        raise StorageError(
            f"invalid tag name {name!r}: use 1-128 letters, digits and . _ - / +, "
            "starting with a letter or digit"
        )
    if re.fullmatch(r"[0-9a-f]{64}", name):
        raise StorageError(f"invalid tag name {name!r}: it would be mistaken for a version digest")


def tag_exists_message(name: str) -> str:
    return f"tag {name!r} already exists; tags are never moved or reused, choose a new name"


def unknown_tag_message(name: str, known: list[str], shown: int = 5) -> str:
    if not known:
        return f"unknown tag {name!r}: no tags exist yet (create one with `takeover data commit --tag NAME`)"
    close = difflib.get_close_matches(name, known, n=shown)
    picks = close + [k for k in known if k not in close]
    listed = ", ".join(picks[:shown])
    more = f" and {len(known) - shown} more" if len(known) > shown else ""
    return f"unknown tag {name!r}; known tags: {listed}{more}"
