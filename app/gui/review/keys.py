"""Every key of the review screen in one table: the window installs its shortcuts from
:data:`KEYS`, the key strip on screen and docs/review.md list the same table, so they cannot
disagree with what the keys do.

The keys need no modifier, so a day of labelling is one hand on the digits and J/K and the other
on the arrows. A text field (notes, tags, the step number) keeps its own typing: a key typed there
is text, not a command; Enter or Esc leaves the field.
"""

from __future__ import annotations

from dataclasses import dataclass

from takeover.storage.label_revisions import OUTCOMES


@dataclass(frozen=True)
class Key:
    keys: tuple[str, ...]
    """As QKeySequence reads them ('Shift+Right', 'PgDown'); the first is the one shown."""
    action: str
    """The window's name for what it does."""
    meaning: str

    @property
    def shown(self) -> str:
        """'J / PgDown' as the help and the docs show it."""
        return " / ".join(_SHOWN.get(k, k) for k in self.keys)


_SHOWN = {
    "Right": "→",
    "Left": "←",
    "Shift+Right": "Shift+→",
    "Shift+Left": "Shift+←",
    "Down": "↓",
    "Up": "↑",
}

OUTCOME_KEYS: dict[str, str] = {"success": "1", "near_success": "2", "failure": "3"}
"""The key of each outcome (one key labels the episode and, by default, moves to the next)."""
assert tuple(OUTCOME_KEYS) == OUTCOMES

KEYS: tuple[Key, ...] = (
    Key(("1",), "success", "label the episode success"),
    Key(("2",), "near_success", "label the episode near-success"),
    Key(("3",), "failure", "label the episode failure"),
    Key(("Q",), "quality", "next quality of a success (clean, side effects, suboptimal, none)"),
    Key(("C",), "category", "next failure category"),
    Key(("N",), "notes", "type notes (Enter or Esc returns to the keys)"),
    Key(("J", "PgDown", "Down"), "next", "next episode in the list"),
    Key(("K", "PgUp", "Up"), "previous", "previous episode in the list"),
    Key(("Right",), "step_forward", "one step forward"),
    Key(("Left",), "step_back", "one step back"),
    Key(("Shift+Right",), "second_forward", "one second forward"),
    Key(("Shift+Left",), "second_back", "one second back"),
    Key(("Home",), "first", "first step"),
    Key(("End",), "last", "last step"),
    Key(("Space",), "play", "play / pause"),
    Key(("]",), "faster", "play faster (0.5×, 1×, 2×)"),
    Key(("[",), "slower", "play slower"),
    Key(("G",), "goto", "go to a step: type its number, Enter"),
    Key(("B",), "boundaries", "switch between the plots and the hand-over boundaries"),
    Key(("F5",), "reload", "reload the list from the store"),
)


def key_of(action: str) -> Key:
    return next(k for k in KEYS if k.action == action)
