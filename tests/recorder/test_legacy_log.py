"""A write-ahead log written before the one codec still recovers.

``data/legacy-wal`` was recorded by the recorder as it was then (arrays in the log as
``{"__nd__": [dtype, shape, data]}``): an attempt of 6 steps at 20 Hz, a 12x16 camera frame on
every other step, a policy value estimate at step 2 and a takeover event at step 3, cut off by
a crash (no end record).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import msgpack
import numpy as np

from takeover.recorder.recovery import recover_all
from takeover.storage.record_log import KIND_STEP, scan
from takeover.storage.schema import ControlSource, EventKind
from takeover.storage.store import Store

LEGACY = Path(__file__).parent / "data" / "legacy-wal"
EPISODE = "legacy-0001"


def test_the_fixture_is_in_the_old_form() -> None:
    steps = [r for r in scan(LEGACY / "steps.log").records if r.kind == KIND_STEP]
    first = msgpack.unpackb(steps[0].payload)
    assert set(first["s"]) == {"__nd__"} and first["s"]["__nd__"][0] == "<f4"


def test_an_unfinished_attempt_logged_in_the_old_form_recovers(tmp_path: Path) -> None:
    with Store.open_or_create(tmp_path / "store") as store:
        shutil.copytree(LEGACY, store.wal_dir / EPISODE)
        outcomes = recover_all(store)
        assert [(o.episode_id, o.action) for o in outcomes] == [(EPISODE, "recovered")]
        ep = store.read_episode(EPISODE)
    assert ep.num_steps == 6 and ep.meta.rate_hz == 20.0 and ep.meta.seed == 7
    for i in range(6):
        np.testing.assert_array_equal(ep.state[i], np.full(8, i, np.float32))
        np.testing.assert_array_equal(ep.action[i], np.full(4, 0.5 * i, np.float32))
        np.testing.assert_array_equal(ep.proposed_action[i], np.full(4, -0.5 * i, np.float32))
    assert ep.state.dtype == np.float32 and list(ep.control_source) == [ControlSource.POLICY] * 6
    np.testing.assert_allclose(np.diff(ep.timestamps), 0.05, atol=1e-9)
    assert (EventKind.TAKEOVER, 3) in [(e.kind, e.step) for e in ep.events]
    value = ep.streams["policy.value"]
    np.testing.assert_array_equal(value.values, np.array([[0.25]], np.float32))
    cam = ep.cameras["front"]
    assert list(cam.step_index) == [0, 2, 4] and (cam.height, cam.width) == (12, 16)
