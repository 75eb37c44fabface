"""The manifest format: optional pins (step ranges, label revisions, derivations, videos) round-trip
through JSON, are written only when set, and change the digest only when set."""

from __future__ import annotations

import json

import pytest

from takeover.storage.manifest import Manifest, ManifestEntry

D = "ab" * 32


def _entry(eid: str = "ep1", **kw: object) -> ManifestEntry:
    return ManifestEntry(eid, D, 100, True, "success", **kw)  # type: ignore[arg-type]


def test_an_entry_without_pins_has_the_json_it_always_had() -> None:
    # The digest of a version made before the pins existed must not change.
    m = Manifest.build([_entry()], {"selection": "all"})
    assert m.canonical_json() == (
        '{"created_from":{"selection":"all"},"episode_schema_version":2,"episodes":'
        f'[{{"digest":"{D}","episode_id":"ep1","num_steps":100,"outcome":"success","success":true}}],'
        '"format":"takeover.manifest/1"}'
    )


def test_pins_round_trip_and_change_the_digest() -> None:
    plain = Manifest.build([_entry()], {})
    pinned = Manifest.build(
        [
            _entry(
                steps=(10, 90),
                labels="rev-7",
                derivations=(("smoothing", "cd" * 32),),
                videos=(("front", "ef" * 32), ("wrist", "01" * 32)),
            )
        ],
        {},
    )
    back = Manifest.from_json_text(pinned.canonical_json())
    assert back == pinned
    assert back.episodes[0].length == 80 and back.num_steps == 80
    assert back.episodes[0].start == 10 and back.episodes[0].stop == 90
    videos = json.loads(pinned.canonical_json())["episodes"][0]["videos"]
    assert videos == {"front": "ef" * 32, "wrist": "01" * 32}
    assert pinned.digest() != plain.digest()
    assert plain.episodes[0].length == 100 and plain.episodes[0].steps is None


@pytest.mark.parametrize("steps", [(-1, 10), (5, 5), (10, 5), (0, 101)])
def test_a_step_range_outside_the_episode_is_refused(steps: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="step range"):
        _entry(steps=steps)


def test_pins_are_sorted_and_unique() -> None:
    with pytest.raises(ValueError, match="sorted and unique"):
        _entry(videos=(("wrist", D), ("front", D)))
    with pytest.raises(ValueError, match="sorted and unique"):
        _entry(derivations=(("a", D), ("a", D)))
