"""Where each attempt's simulator seed comes from (the ``[seeds]`` section, docs/config.md).

- By default the store hands out collection seeds (:meth:`Store.allocate_seed`): never one it
  handed out before, whichever process asks, and never one in the range reserved for evaluation.
- ``seeds.start`` (``--seed N``) asks for N, N+1, ... explicitly; each is entered in the store's
  ledger, so the store never hands it out later. A collection seed inside the reserved range is
  refused before the attempt starts.
- Evaluation mode (``seeds.evaluation``, ``--evaluation``) walks the reserved range from its
  first seed (or from ``start``); those seeds are meant to repeat, so they are not entered.
"""

from __future__ import annotations

from takeover.app.runtime.config import ConfigError, SeedsSection, seed_problem
from takeover.storage.store import Store


def _first_explicit(section: SeedsSection) -> int | None:
    if section.start is None and section.evaluation:
        return section.evaluation_first
    return section.start


def check_attempts(section: SeedsSection, attempts: int) -> None:
    """Refuse now (before anything starts) if ``attempts`` explicit seeds would leave their range."""
    first = _first_explicit(section)
    if first is None or attempts < 1:
        return
    last = first + attempts - 1
    reserved = section.reserved
    # Where a run of seeds can first go wrong: its start, entering or leaving the reserved range, its end.
    edges = (first, max(first, reserved.first), min(last, reserved.last + 1), last)
    bad = next((seed for seed in edges if first <= seed <= last and seed_problem(section, seed)), None)
    if bad is not None:
        problem = seed_problem(section, bad)
        raise ConfigError(f"--seed/--episodes: the attempts would use seeds {first}..{last}, but {problem}")


class SeedSource:
    """Gives the seed of each attempt in turn; see the module docstring."""

    def __init__(self, section: SeedsSection, store: Store) -> None:
        self.section = section
        self.store = store
        self._next = _first_explicit(section)

    def next(self) -> int:
        """The seed of the next attempt."""
        if self._next is None:
            return self.store.allocate_seed(self.section.reserved)
        seed = self._next
        problem = seed_problem(self.section, seed)
        if problem:
            raise ConfigError(f"seeds: the next attempt would use seed {seed}, but {problem}")
        if not self.section.evaluation:
            self.store.claim_seed(seed)
        self._next = seed + 1
        return seed
