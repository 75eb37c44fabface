"""What the export checks (``check_lerobot_export.py``, ``check_robomimic_export.py``) share: the
problems found, one line each, and the steps run one after another so that one that breaks does
not hide the others. Standard library only: it runs in the frameworks' environments, beside the
checks (``python scripts/check_<format>_export.py`` puts this folder on the import path)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text, at most 200 characters."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else "")[:200]


class Failures:
    """The problems found so far, each one line for a person, printed as they are found."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._keys: set[str] = set()

    def add(self, line: str) -> None:
        self.lines.append(line)
        print(f"FAIL: {line}", flush=True)

    def check(self, ok: bool, line: str) -> bool:
        """``ok``, and the problem ``line`` added when it is false."""
        if not ok:
            self.add(line)
        return ok

    def once(self, key: str, line: str) -> None:
        """Add ``line`` unless a problem with the same ``key`` was added (one per batch-wide kind)."""
        if key not in self._keys:
            self._keys.add(key)
            self.add(line)

    def run(self, steps: Sequence[tuple[str, Callable[[], Any]]]) -> dict[str, Any]:
        """Each step's result by name; a step that raises is a problem and the next one runs."""
        results: dict[str, Any] = {}
        for name, step in steps:
            try:
                results[name] = step()
            except Exception as exc:
                self.add(f"{name}: {type(exc).__name__}: {first_line(exc)}")
        return results

    def verdict(self, ok_line: str) -> int:
        """The exit status, after one closing line."""
        if self.lines:
            print(f"FAILED: {len(self.lines)} problem(s)")
            return 1
        print(f"OK: {ok_line}")
        return 0
