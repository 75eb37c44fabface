"""Simulator seeds in the catalog: the ledger of collection seeds, and the seed of each episode.

A day of collection must not repeat the same scenes, so collection seeds are handed out by the
store's catalog (:func:`allocate`): each one once, whichever process asks, on SQLite and
PostgreSQL alike. A seed a person asks for explicitly is entered in the same ledger
(:func:`claim`), so the store never hands it out later. A range of seeds is reserved for
evaluating policies; allocation skips it (the caller says which range: it is configuration).

Allocation is one ``INSERT ... SELECT max + 1 ... RETURNING`` statement. SQLite takes its write
lock before that statement reads, so two writers never compute the same seed; on PostgreSQL the
second of two racing inserts fails on the primary key, and :meth:`Catalog.allocate_seed` retries.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, and_, case, func, insert, literal, select
from sqlalchemy.orm import Session

from takeover.storage.errors import SeedsExhaustedError
from takeover.storage.tables import SeedRow

MAX_SEED = 2**31 - 1
"""Largest seed (the station protocol and the simulator take 31-bit seeds)."""


@dataclass(frozen=True)
class SeedRange:
    """Seeds ``first`` to ``last``, both included."""

    first: int
    last: int

    def __post_init__(self) -> None:
        if not 0 <= self.first <= self.last <= MAX_SEED:
            raise ValueError(f"a seed range needs 0 <= first <= last <= {MAX_SEED}, got {self}")

    def __contains__(self, seed: object) -> bool:
        return isinstance(seed, int) and self.first <= seed <= self.last

    def __str__(self) -> str:
        return f"{self.first}..{self.last}"


def allocate(s: Session, reserved: SeedRange, now: float) -> int:
    """Enter the next collection seed in the ledger and return it (raises IntegrityError on a race).

    The next seed is one above the highest in the ledger (0 for an empty ledger), moved past
    ``reserved`` if it falls inside.
    """
    above = select(func.coalesce(func.max(SeedRow.seed) + 1, 0)).scalar_subquery()
    seed = case((and_(above >= reserved.first, above <= reserved.last), reserved.last + 1), else_=above)
    stmt = (
        insert(SeedRow)
        .from_select(["seed", "origin", "taken_at"], select(seed, literal("store"), literal(now)))
        .returning(SeedRow.seed)
    )
    got = int(s.execute(stmt).scalar_one())
    if got > MAX_SEED:
        raise SeedsExhaustedError(
            f"every collection seed up to {MAX_SEED} has been used in this store: start a new store, "
            "or choose seeds explicitly"
        )
    return got


def claim(s: Session, seed: int, now: float) -> bool:
    """Enter ``seed`` in the ledger; False if it was there already (IntegrityError on a race)."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"a seed must be in 0..{MAX_SEED}, got {seed}")
    taken = select(SeedRow.seed).where(SeedRow.seed == seed).exists()
    stmt = (
        insert(SeedRow)
        .from_select(
            ["seed", "origin", "taken_at"],
            select(literal(seed, BigInteger), literal("configured"), literal(now)).where(~taken),
        )
        .returning(SeedRow.seed)
    )
    return s.execute(stmt).scalar_one_or_none() is not None
