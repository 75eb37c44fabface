"""The fuzz suite as a whole runs at least 1,000 generated cases.

Each endpoint's test asserts that it ran its own minimum (``MIN_CASES``), so a passing suite has
run at least their sum in whatever order its tests ran; this test keeps that sum from dropping
below 1,000 when someone lowers a minimum.
"""

from __future__ import annotations

from types import SimpleNamespace


def test_the_minimums_add_up_to_a_thousand_cases(fz: SimpleNamespace) -> None:
    assert set(fz.MIN_CASES) == {"station/fake-robot", "station/sim", "policy", "engine/command-decode"}
    assert sum(fz.MIN_CASES.values()) >= 1000, fz.MIN_CASES
