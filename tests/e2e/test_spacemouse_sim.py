"""SpaceMouse report bytes on a fake HID transport, decoded by the real pyspacemouse, drive a
takeover of the shipped policy in the real MuJoCo simulator; an unplug holds the arm at once."""

from __future__ import annotations

import numpy as np
import pytest

from takeover.app.control.inference import Proposal
from takeover.app.control.loop import ControlLoop, LoopConfig
from takeover.app.policy import default_checkpoint_path
from takeover.app.policy.checkpoint import load_policy
from takeover.app.station.metaworld_sim import MetaWorldConfig, MetaWorldStation
from takeover.storage.schema import ControlSource, EventKind
from takeover.teleop.spacemouse import SpaceMouseConfig, SpaceMouseTeleop
from takeover.teleop.testing import SpaceMouseReports, install_fake_hid

from ..control.test_loop import Tape
from ..control.test_loop_spacemouse import Unplug

pytestmark = [pytest.mark.sim]


class ShippedPolicy:
    def __init__(self) -> None:
        self._policy = load_policy(default_checkpoint_path())
        self.policy_id = self._policy.policy_id

    def infer(self, state: np.ndarray, step: int) -> Proposal:
        return Proposal(step, self._policy.predict(state))


def test_spacemouse_takes_over_in_the_simulator_and_an_unplug_holds_within_one_period() -> None:
    reports = SpaceMouseReports("SpaceMouseCompact")
    dev = reports.device()
    tape = Tape()
    # Step 10: the operator lifts the cap (+z); step 30: the cable is pulled mid-takeover.
    observer = Unplug(dev, {10: [reports.motion(z=0.9)]}, unplug=30, replug=10_000)
    with (
        install_fake_hid(None, [dev]),
        SpaceMouseTeleop(SpaceMouseConfig()) as sm,
        MetaWorldStation(MetaWorldConfig(cameras=())) as sim,
    ):
        targets: list[np.ndarray] = []  # the commanded end-effector target after each act
        act = sim.act

        def act_and_log(action: np.ndarray):  # type: ignore[no-untyped-def]
            obs = act(action)
            targets.append(obs.ee_target.copy())
            return obs

        sim.act = act_and_log  # type: ignore[method-assign]
        loop = ControlLoop(
            sim,
            ShippedPolicy(),
            [sm],
            [observer, tape],
            LoopConfig(rate_hz=50.0, max_steps=45, end_on_success=False),
        )
        loop.run_episode(seed=3)
    takeover = [e.step for e in tape.events if e.kind is EventKind.TAKEOVER]
    holds = [e for e in tape.events if e.kind is EventKind.HOLD]
    assert takeover == [10]  # the first period after the report arrived
    assert len(holds) == 1 and holds[0].step == 30  # the period whose read failed is already held
    assert "disconnected" in holds[0].reason
    sources = [s.control_source for s in tape.steps]
    assert sources[10:30] == [ControlSource.HUMAN] * 20
    assert set(sources[30:]) == {ControlSource.HOLD}
    hand_z = np.array([s.state[2] for s in tape.steps])
    assert hand_z[29] - hand_z[12] > 0.05  # the cap lifted the real (simulated) arm
    target = np.stack(targets)
    assert np.all(target[30:] == target[29])  # held: the commanded target froze in that period
    assert np.all(np.diff(hand_z[31:]) >= -1e-4) and hand_z[-1] - hand_z[-2] < 2e-4  # the arm settles
