"""Deploying a checkpoint through a running engine: refused while an attempt runs, taken between
attempts (also beside an attached console, and from `takeover policy deploy`), and the next
recorded attempt carries the new policy's id. A real engine on its own thread, the fake robot
behind a station server and a policy server on loopback, as in test_engine_shift."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from takeover.app.engine.protocol import CommandName
from takeover.app.engine.registry import running_engines
from takeover.app.policy.checkpoint import save_checkpoint
from takeover.app.policy.model import PolicyConfig
from takeover.app.policy.testing import random_model
from takeover.app.station.fake_robot import STATE_DIM

from ..policy.test_policy_cli import run as cli
from .test_engine_endpoints import Peers
from .test_engine_shift import RobotPeers, Running, config_for

ROBOT_POLICY = PolicyConfig(
    name="fake-robot-mlp", state_dim=STATE_DIM, features=tuple(range(STATE_DIM)), hidden=(8,), horizon=4
)


@pytest.fixture
def robot_peers() -> Iterator[Peers]:
    with RobotPeers() as p:
        yield p


def test_deploy_between_attempts_and_the_next_attempt_records_the_new_id(
    robot_peers: Peers, tmp_path: Path
) -> None:
    ckpt = tmp_path / "round1.safetensors"
    new_id = save_checkpoint(random_model(seed=3, config=ROBOT_POLICY), ckpt)
    with Running(config_for(robot_peers, tmp_path)) as run:
        run.wait(lambda s: s.readiness == "ready")
        assert run.status().policy_id == "still-0"
        assert run.send(CommandName.START_EPISODE) == ""
        run.wait(lambda s: s.episode_active and s.step > 5)
        refused = run.send(CommandName.DEPLOY, checkpoint=str(ckpt))
        assert refused == "an attempt is running: deploy between attempts"
        assert run.send(CommandName.STOP_EPISODE, outcome="failure") == ""
        run.wait(lambda s: not s.episode_active and s.episodes_done == 1)

        assert run.send(CommandName.DEPLOY, checkpoint=str(ckpt)) == ""
        status = run.status()
        assert status.policy_id == new_id and f"deployed policy {new_id} (was still-0)" in status.message

        assert run.send(CommandName.START_EPISODE) == ""
        run.wait(lambda s: s.episode_active and s.step > 5)
        assert run.status().mode == "AUTONOMOUS", run.status().message
        assert run.send(CommandName.STOP_EPISODE, outcome="success") == ""
        run.wait(lambda s: not s.episode_active and s.episodes_done == 2)
        store = run.engine._runtime.store  # type: ignore[union-attr]
        recorded = sorted((r.started_at, r.policy_id) for r in store.list_episodes())
    assert [policy_id for _, policy_id in recorded] == ["still-0", new_id]


def test_a_broken_checkpoint_leaves_the_engine_on_its_policy(robot_peers: Peers, tmp_path: Path) -> None:
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with Running(config_for(robot_peers, tmp_path)) as run:
        run.wait(lambda s: s.readiness == "ready")
        refused = run.send(CommandName.DEPLOY, checkpoint=str(bad))
        assert "\n" not in refused and "still serving still-0" in refused and "broken.safetensors" in refused
        assert run.status().policy_id == "still-0"
        assert run.engine._runtime.policy.policy_id == "still-0"  # type: ignore[union-attr]


def test_policy_deploy_finds_the_running_engine_beside_an_attached_console(
    robot_peers: Peers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    ckpt = tmp_path / "round1.safetensors"
    new_id = save_checkpoint(random_model(seed=4, config=ROBOT_POLICY), ckpt)
    assert cli(["policy", "deploy", str(ckpt)]) == 2
    assert "no engine is running on this machine" in capsys.readouterr().err
    with Running(config_for(robot_peers, tmp_path)) as run:
        run.wait(lambda s: s.readiness == "ready")
        _, command = run.engine.bind()
        assert [e.command for e in running_engines()] == [command]
        assert run.engine.viewers.attach("operator@station")  # a console holds the engine
        assert "another console is attached" in run.send(CommandName.START_EPISODE)
        assert cli(["policy", "deploy", str(ckpt)]) == 0
        assert "the next attempt runs it" in capsys.readouterr().out
        assert run.status().policy_id == new_id
        assert cli(["policy", "deploy", str(tmp_path / "missing.safetensors"), "--engine", command]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("error: the engine at") and f"still serving {new_id}" in line
    assert running_engines() == []
