"""The simulated station against the real MuJoCo simulation and offscreen renderer."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from takeover.app.station.base import Observation
from takeover.app.station.metaworld_sim import MetaWorldConfig, MetaWorldStation

pytestmark = pytest.mark.sim

SUCCESS_RADIUS = 0.07  # Meta-World pick-place-v3: success when the puck is within 7 cm of the goal


@pytest.fixture(scope="module")
def station() -> Iterator[MetaWorldStation]:
    with MetaWorldStation(MetaWorldConfig(seed=0)) as st:
        yield st


def _run_expert(station: MetaWorldStation, seed: int) -> list[Observation]:
    obs = [station.reset(seed)]
    while not station.done and not obs[-1].success:
        action = station.expert_action()
        assert action is not None
        obs.append(station.act(action))
    return obs


def test_constructor_does_no_io() -> None:
    st = MetaWorldStation(MetaWorldConfig())
    assert not st.connected
    with pytest.raises(RuntimeError, match="connect"):
        st.reset(0)
    st.close()  # closing an unconnected station is harmless


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="unknown camera"):
        MetaWorldConfig(cameras=("nope",))
    with pytest.raises(ValueError, match="max_steps"):
        MetaWorldConfig(max_steps=0)
    with pytest.raises(ValueError, match="rate_hz"):
        MetaWorldConfig(rate_hz=0)


def test_info(station: MetaWorldStation) -> None:
    info = station.info
    assert info.name == "sim-pick-place"
    assert info.robot == "sawyer"
    assert info.task == "pick up the puck and place it at the goal"
    assert info.cameras == ("corner",)
    assert (info.state_dim, info.action_dim) == (39, 4)
    assert info.action_low == (-1.0,) * 4 and info.action_high == (1.0,) * 4
    assert info.rate_hz == 20.0
    # the box Meta-World clips its mocap target to, so the loop can keep to it as well
    assert info.workspace_low is not None and info.workspace_high is not None
    assert all(lo < hi for lo, hi in zip(info.workspace_low, info.workspace_high, strict=True))
    first = station.reset(seed=0)
    low, high = np.asarray(info.workspace_low), np.asarray(info.workspace_high)
    assert np.all(low <= first.ee_target) and np.all(first.ee_target <= high)


def test_reset_and_act_shapes_and_dtypes(station: MetaWorldStation) -> None:
    cfg = station.config
    for obs in (station.reset(1), station.act(np.zeros(4, dtype=np.float32))):
        assert obs.state.shape == (39,) and obs.state.dtype == np.float32
        assert obs.ee_target.shape == (3,) and obs.ee_target.dtype == np.float32
        assert set(obs.images) == {"corner"} == set(obs.image_times)
        img = obs.images["corner"]
        assert img.shape == (cfg.height, cfg.width, 3) and img.dtype == np.uint8
        assert img.flags.c_contiguous
        assert obs.t <= obs.image_times["corner"]
        assert isinstance(obs.success, bool)
    assert station.steps == 1


def test_reset_is_reproducible_from_its_seed(station: MetaWorldStation) -> None:
    a = station.reset(7)
    station.act(np.ones(4, dtype=np.float32))
    other = station.reset(8)
    b = station.reset(7)
    np.testing.assert_array_equal(a.state, b.state)
    np.testing.assert_array_equal(a.images["corner"], b.images["corner"])
    assert not np.allclose(a.state[4:7], other.state[4:7]) or not np.allclose(a.state[36:], other.state[36:])
    station.reset(None)
    assert isinstance(station.last_seed, int)


def test_image_is_not_blank_and_changes_when_the_arm_moves(station: MetaWorldStation) -> None:
    first = station.reset(2)
    img0 = first.images["corner"].astype(np.int16)
    assert img0.std() > 20.0
    assert len(np.unique(first.images["corner"].reshape(-1, 3), axis=0)) > 100
    obs = first
    for _ in range(15):
        obs = station.act(np.array([0.0, 0.0, 1.0, -1.0], dtype=np.float32))
    assert obs.state[2] > first.state[2] + 0.02  # the hand went up
    assert obs.ee_target[2] > first.ee_target[2]
    diff = np.abs(obs.images["corner"].astype(np.int16) - img0)
    assert (diff.max(axis=2) > 30).mean() > 0.005


def test_nan_inf_and_wrong_shape_actions_are_refused(station: MetaWorldStation) -> None:
    before = station.reset(3)
    with pytest.raises(ValueError, match="NaN or Inf"):
        station.act(np.array([np.nan, 0, 0, 0], dtype=np.float32))
    with pytest.raises(ValueError, match="NaN or Inf"):
        station.act(np.array([0, np.inf, 0, 0]))
    with pytest.raises(ValueError, match="shape"):
        station.act(np.zeros(3))
    assert station.steps == 0
    after = station.act(np.zeros(4))
    assert np.allclose(after.state[4:7], before.state[4:7], atol=1e-3)


def test_out_of_range_actions_are_clipped(station: MetaWorldStation) -> None:
    station.reset(4)
    big = station.act(np.array([50.0, 0.0, 0.0, 0.0]))
    station.reset(4)
    unit = station.act(np.array([1.0, 0.0, 0.0, 0.0]))
    np.testing.assert_allclose(big.state, unit.state, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 11])
def test_expert_succeeds_and_success_flag_matches_meta_world(station: MetaWorldStation, seed: int) -> None:
    trajectory = _run_expert(station, seed)
    assert trajectory[-1].success, f"expert did not succeed within {station.config.max_steps} steps"
    assert len(trajectory) < 200
    for obs in trajectory[1:]:
        distance = float(np.linalg.norm(obs.state[4:7].astype(np.float64) - obs.state[36:39]))
        if abs(distance - SUCCESS_RADIUS) > 1e-4:  # float32 state: skip the knife edge
            assert obs.success == (distance <= SUCCESS_RADIUS)


def test_episode_length_is_enforced() -> None:
    with MetaWorldStation(MetaWorldConfig(cameras=(), max_steps=3)) as st:
        obs = st.reset(0)
        assert obs.images == {} and obs.image_times == {}
        for _ in range(3):
            st.act(np.zeros(4))
        assert st.done
        with pytest.raises(RuntimeError, match="reset"):
            st.act(np.zeros(4))
        st.reset(0)
        st.act(np.zeros(4))


def test_close_is_clean(capfd: pytest.CaptureFixture[str], recwarn: pytest.WarningsRecorder) -> None:
    st = MetaWorldStation(MetaWorldConfig(cameras=("corner", "gripperPOV"), width=64, height=48))
    with st:
        st.reset(0)
        st.act(np.zeros(4))
    assert not st.connected
    st.close()  # idempotent
    with pytest.raises(RuntimeError, match="connect"):
        st.act(np.zeros(4))
    del st
    import gc

    gc.collect()
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert [str(w.message) for w in recwarn] == []


def test_interpreter_exit_is_quiet_even_without_close() -> None:
    """The GL context is freed before interpreter teardown, so no EGL errors are printed."""
    import subprocess
    import sys

    script = (
        "import numpy as np\n"
        "from takeover.app.station.metaworld_sim import MetaWorldConfig, MetaWorldStation\n"
        "s = MetaWorldStation(MetaWorldConfig(width=64, height=48))\n"
        "s.connect(); s.reset(0); s.act(np.zeros(4))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_task_progress_counts_the_object_held_then_the_task_done(station: MetaWorldStation) -> None:
    station.reset(3)
    first = station.task_progress()
    assert first is not None and (first.done, first.stages) == (0, 2)
    seen = []
    while not station.done:
        action = station.expert_action()
        assert action is not None
        obs = station.act(action)
        progress = station.task_progress()
        assert progress is not None
        seen.append(progress.done)
        if obs.success:
            break
    assert obs.success and seen[-1] == 2
    held = seen.index(1)  # grasped and lifted, some periods before the task is done
    assert 0 < held < len(seen) - 5 and set(seen[:held]) == {0}
    puck_z = obs.state[6]
    assert puck_z > 0.04  # the puck is off the table when it counts as held
    station.reset(4)
    again = station.task_progress()
    assert again is not None and again.done == 0
