"""The engine over a whole shift: requests between attempts are refused (e-stop and its reset
excepted), a failed start keeps the engine up and says why, the operator's verdict, note and end
reason reach the catalog, re-record reuses the seed, and the status carries the clock, the health
items and the session's figures.

Each test runs a real engine (in this process, on its own thread) on the fake robot behind a real
station server and a policy server on loopback; commands go through the engine's command
handler as they arrive from its socket.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import zmq

from takeover.app.engine.process import Engine
from takeover.app.engine.protocol import Command, CommandName, CommandReply, Status
from takeover.app.engine.sockets import EngineEndpoints
from takeover.app.net.messages import RefusedError, decode_reply
from takeover.app.policy.server import PolicyServer, ServerConfig
from takeover.app.runtime.config import AppConfig, parse_config
from takeover.app.station.fake_robot import STATE_DIM
from takeover.storage.schema import EventKind
from takeover.storage.store import Store
from takeover.teleop.testing import SpaceMouseReports, install_fake_hid

from .test_engine_endpoints import Peers, _bound_endpoints


class Running:
    """An engine on its own thread; :meth:`send` answers a command as the socket would."""

    def __init__(self, config: AppConfig) -> None:
        self.engine = Engine(config, EngineEndpoints("tcp://127.0.0.1:0", "tcp://127.0.0.1:0"))
        self.result: list[int] = []
        self.thread = threading.Thread(target=lambda: self.result.append(self.engine.run()), daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.engine._handle(Command(CommandName.QUIT))
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the engine did not stop"

    def send(self, name: CommandName, **fields: object) -> str:
        """'' when the command was taken, else the engine's reason for refusing it."""
        reply = self.engine._answer([Command(name, **fields).encode()])  # type: ignore[arg-type]
        try:
            decode_reply(reply, CommandReply)
        except RefusedError as exc:
            return str(exc)
        return ""

    def status(self) -> Status:
        return self.engine.board.snapshot()

    def published(self) -> Status:
        """The status as the publisher sends it (with the clock and the health items)."""
        return Status.decode(self.engine.publishable().encode())

    def wait(self, pred: Callable[[Status], bool], timeout: float = 30.0) -> Status:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status()
            if pred(status):
                return status
            time.sleep(0.01)
        raise AssertionError(f"timed out; the engine shows {self.status()}")


def config_for(peers: Peers, folder: Path, extra: str = "", policy_url: str = "") -> AppConfig:
    store = folder / "store"
    if not store.exists():
        Store.create(store).close()
    text = (
        f'[station]\nkind = "remote"\nurl = "{peers.station.endpoint}"\n'
        f'[policy]\nurl = "{policy_url or peers.policy.endpoint}"\ntimeout_s = 0.5\n'
        f'[store]\npath = "{store}"\n[loop]\nrate_hz = 50.0\nmax_steps = 100000\n{extra}'
    )
    return parse_config(text, "test")


class RobotPeers(Peers):
    """The fake robot and a still policy that takes the fake robot's state."""

    def __init__(self) -> None:
        super().__init__()
        self.policy.close()
        config = ServerConfig(endpoint="tcp://127.0.0.1:*", poll_ms=20, state_dim=STATE_DIM)
        self.policy = PolicyServer(config, self)
        self.threads = [
            threading.Thread(target=s.serve_forever, daemon=True) for s in (self.station, self.policy)
        ]


@pytest.fixture
def peers() -> Iterator[Peers]:
    with RobotPeers() as p:
        yield p


def test_requests_between_attempts_are_refused_and_never_reach_the_next_attempt(
    peers: Peers, tmp_path: Path
) -> None:
    with Running(config_for(peers, tmp_path)) as run:
        run.wait(lambda s: s.readiness == "ready")
        for name in (CommandName.TAKEOVER, CommandName.HANDBACK, CommandName.HOLD, CommandName.RESUME):
            assert run.send(name) == "no attempt is running: press Start first"
        assert run.send(CommandName.KEYS, keys=("T",)) == "no attempt is running: press Start first"
        assert run.send(CommandName.STOP_EPISODE) == "no attempt is running: press Start first"
        assert run.send(CommandName.START_EPISODE) == ""
        run.wait(lambda s: s.episode_active and s.step > 10)
        assert run.status().mode == "AUTONOMOUS", run.status().message
        assert run.send(CommandName.STOP_EPISODE, outcome="failure") == ""
        done = run.wait(lambda s: not s.episode_active and s.episodes_done == 1)
        store = run.engine._runtime.store  # type: ignore[union-attr]
        (rec,) = store.list_episodes()
        kinds = [e.kind for e in store.catalog.get_events(rec.episode_id)]
        assert EventKind.TAKEOVER not in kinds and EventKind.HOLD not in kinds
        assert rec.outcome == "failure" and rec.end_reason == "operator"
        assert done.session is not None and done.session.attempts == 1 and done.session.failures == 1


def test_estop_between_attempts_latches_at_once_and_refuses_start_until_reset(
    peers: Peers, tmp_path: Path
) -> None:
    with Running(config_for(peers, tmp_path)) as run:
        run.wait(lambda s: s.readiness == "ready")
        assert run.send(CommandName.ESTOP) == ""
        assert run.status().mode == "ESTOP"
        refused = run.send(CommandName.START_EPISODE)
        assert "e-stop is latched" in refused and "reset" in refused
        assert run.send(CommandName.RESET_ESTOP) == ""
        assert run.status().mode == "IDLE"
        assert run.send(CommandName.RESET_ESTOP) == "the e-stop is not latched"
        assert run.send(CommandName.START_EPISODE) == ""
        run.wait(lambda s: s.episode_active and s.step > 3)
        assert run.status().mode == "AUTONOMOUS"  # not held: the reset was consumed between attempts
        run.send(CommandName.DISCARD_EPISODE)
        run.wait(lambda s: not s.episode_active)


def test_verdict_note_interrupt_and_rerecord_reach_the_catalog(peers: Peers, tmp_path: Path) -> None:
    config = config_for(peers, tmp_path, extra='[operator]\nname = "Ada"\n')
    with Running(config) as run:
        run.wait(lambda s: s.readiness == "ready")
        assert run.send(CommandName.RERECORD) == "no attempt to record again yet: press Start"
        run.send(CommandName.START_EPISODE)
        run.wait(lambda s: s.episode_active and s.step > 5)
        run.send(CommandName.TAKEOVER)
        run.wait(lambda s: s.mode == "HUMAN")
        run.send(CommandName.STOP_EPISODE, outcome="near_success", note="grasped, dropped at the goal")
        run.wait(lambda s: not s.episode_active and s.episodes_done == 1)
        # Re-record: discarded and started again with the same seed; someone else at the console.
        run.send(CommandName.START_EPISODE, operator="Grace")
        second = run.wait(lambda s: s.episode_active and s.step > 3).episode_id
        second_seed = run.engine._last_seed
        assert run.send(CommandName.RERECORD) == ""
        run.wait(lambda s: s.episode_active and s.episode_id != second and s.step > 3)
        run.send(CommandName.INTERRUPT)
        final = run.wait(lambda s: not s.episode_active and s.episodes_done == 2)
        store = run.engine._runtime.store  # type: ignore[union-attr]
        records = {r.end_reason: r for r in store.list_episodes()}
        assert set(records) == {"operator", "interrupted"}  # the discarded one is not stored
        judged = records["operator"]
        assert judged.outcome == "near_success" and judged.note == "grasped, dropped at the goal"
        assert judged.operator == "Ada" and judged.num_takeovers == 1
        meta = store.read_episode(judged.episode_id).meta
        assert meta.outcome == "near_success" and meta.note == judged.note and meta.end_reason == "operator"
        assert records["interrupted"].seed == second_seed != judged.seed  # re-recorded with the seed
        assert records["interrupted"].operator == "Grace"  # from the Start that named her on
        session = final.session
        assert session is not None and session.operator == "Grace"
        assert (session.attempts, session.near_successes, session.interventions) == (2, 1, 1)
        assert len(session.first_intervention_s) == 1 and session.first_intervention_s[0] > 0


@pytest.mark.parametrize("how", ["quit", "parent gone"])
def test_an_attempt_cut_short_with_no_answer_is_kept_as_interrupted(
    peers: Peers, tmp_path: Path, how: str
) -> None:
    config = config_for(peers, tmp_path)
    run = Running(config)
    with run:
        run.wait(lambda s: s.readiness == "ready")
        run.send(CommandName.START_EPISODE)
        run.wait(lambda s: s.episode_active and s.step > 3)
        if how == "quit":
            assert run.send(CommandName.QUIT) == ""
        else:
            run.engine._parent_gone()  # what the link to the console calls when its process goes
        run.thread.join(timeout=30)
    assert run.result == [0]
    with Store.open(tmp_path / "store") as store:
        (rec,) = store.list_episodes()
        assert rec.end_reason == "interrupted" and rec.outcome == ""


def test_hold_does_not_use_the_attempts_time(peers: Peers, tmp_path: Path) -> None:
    with Running(config_for(peers, tmp_path)) as run:
        run.wait(lambda s: s.readiness == "ready")
        run.send(CommandName.START_EPISODE)
        run.wait(lambda s: s.episode_active and s.step > 5)
        run.send(CommandName.HOLD)
        run.wait(lambda s: s.mode == "HOLD")
        loop = run.engine._runtime.loop  # type: ignore[union-attr]
        counted_at_hold = loop.clock_figures()[0]
        time.sleep(0.5)
        clock = run.published().clock
        assert clock is not None and clock.limit_s == pytest.approx(2000.0)
        assert clock.held_s >= 0.3 and clock.elapsed_s == pytest.approx(counted_at_hold, abs=0.05)
        assert clock.left_s == pytest.approx(clock.limit_s - clock.elapsed_s)
        run.send(CommandName.RESUME)
        run.wait(lambda s: s.mode in ("RAMP", "AUTONOMOUS"))
        run.send(CommandName.DISCARD_EPISODE)
        run.wait(lambda s: not s.episode_active)


def test_a_failed_start_keeps_the_engine_up_and_retry_starts_it(peers: Peers, tmp_path: Path) -> None:
    nobody = "tcp://127.0.0.1:9"  # discard port: nobody answers there
    config = config_for(peers, tmp_path, policy_url=nobody)
    with Running(config) as run:
        failed = run.wait(lambda s: s.readiness == "failed", timeout=20)
        assert failed.problem is not None and "tcp://127.0.0.1:9" in failed.problem.cause
        assert failed.problem.remedies == ("retry", "settings")
        assert "could not start" in run.send(CommandName.START_EPISODE)
        assert run.send(CommandName.TAKEOVER).startswith("the engine could not start")
        assert run.thread.is_alive()
        # The way out: the configuration is fixed (here, in place) and RETRY starts again.
        run.engine.config = config_for(peers, tmp_path)
        assert run.send(CommandName.RETRY) == ""
        ready = run.wait(lambda s: s.readiness == "ready", timeout=20)
        assert ready.problem is None and ready.policy_id == "still-0"
        assert run.send(CommandName.RETRY) == "the engine did not fail to start: nothing to retry"


def test_a_missing_spacemouse_offers_the_keyboard(peers: Peers, tmp_path: Path) -> None:
    extra = '[operator]\nkind = "spacemouse"\n[spacemouse]\npath = "/dev/hidraw-none"\n'
    with Running(config_for(peers, tmp_path, extra=extra)) as run:
        failed = run.wait(lambda s: s.readiness == "failed", timeout=20)
        assert failed.problem is not None and failed.problem.cause.startswith("spacemouse")
        assert failed.problem.remedies == ("retry", "keyboard", "settings")
        assert run.send(CommandName.USE_KEYBOARD) == ""
        run.wait(lambda s: s.readiness == "ready", timeout=20)
        assert run.engine.config.operator.kind == "keyboard"
        names = [h.name for h in run.published().health]
        assert "SpaceMouse" not in names and "policy server" in names and "recording" in names


def test_health_items_say_what_is_up(peers: Peers, tmp_path: Path) -> None:
    with Running(config_for(peers, tmp_path)) as run:
        run.wait(lambda s: s.readiness == "ready")
        run.send(CommandName.START_EPISODE)
        run.wait(lambda s: s.episode_active and s.step > 20)
        health = {h.name: h for h in run.published().health}
        policy = health["policy server"]
        assert policy.level == "ok" and "ms round trip" in policy.detail
        recording = health["recording"]
        assert recording.level in ("ok", "warning") and "free (about" in recording.detail
        assert any(name.startswith("station ") for name in health)
        run.send(CommandName.DISCARD_EPISODE)
        run.wait(lambda s: not s.episode_active)


def test_an_attempt_the_disk_cannot_hold_is_refused_in_plain_words(peers: Peers, tmp_path: Path) -> None:
    # A million periods with a hundredfold margin: more than this disk holds.
    config = config_for(peers, tmp_path, extra="[recorder]\ndisk_margin = 100.0\n")
    config = replace(config, loop=replace(config.loop, max_steps=1_000_000))
    with Running(config) as run:
        run.wait(lambda s: s.readiness == "ready")
        refused = run.send(CommandName.START_EPISODE)
        assert refused.startswith("not enough disk space to record an attempt")
        assert "free some space" in refused
        recording = {h.name: h for h in run.published().health}["recording"]
        assert recording.level == "error" and recording.detail.startswith("not enough disk space")
        # The whole sentence stays in the status (a refusal on the wire is cut to a line).
        assert run.status().message.startswith("cannot start: not enough disk space")
        assert run.status().message.endswith("lower loop.max_steps or [recorder] disk_margin")


def test_spacemouse_health_and_its_estop_button(
    peers: Peers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reports = SpaceMouseReports("SpaceMouseCompact")
    device = reports.device()
    install_fake_hid(monkeypatch, [device])
    extra = '[operator]\nkind = "spacemouse"\n[spacemouse]\nestop_button = "LEFT"\ngripper_button = ""\n'
    with Running(config_for(peers, tmp_path, extra=extra)) as run:
        run.wait(lambda s: s.readiness == "ready")
        run.send(CommandName.START_EPISODE)
        run.wait(lambda s: s.episode_active and s.step > 3)
        mouse = {h.name: h for h in run.published().health}["SpaceMouse"]
        assert mouse.level == "ok" and "connected" in mouse.detail
        device.push(reports.buttons("LEFT"))
        estopped = run.wait(lambda s: s.mode == "ESTOP")
        assert "E-STOP" in estopped.message and "spacemouse" in estopped.message
        device.unplug()
        run.wait(lambda s: {h.name: h.level for h in run.published().health}.get("SpaceMouse") == "error")
        detail = {h.name: h for h in run.published().health}["SpaceMouse"].detail
        assert detail.startswith("not connected: ")
        run.send(CommandName.STOP_EPISODE, outcome="failure")
        run.wait(lambda s: not s.episode_active)
        assert "e-stop is latched" in run.send(CommandName.START_EPISODE)


@pytest.mark.slow
def test_the_engine_process_stays_up_after_a_failed_start(peers: Peers, tmp_path: Path) -> None:
    """`takeover engine` whose policy server does not answer: the process keeps publishing why,
    refuses Start in those words, and ends cleanly on QUIT."""
    store = tmp_path / "store"
    Store.create(store).close()
    config = tmp_path / "engine.toml"
    config.write_text(
        f'[station]\nkind = "remote"\nurl = "{peers.station.endpoint}"\n'
        f'[policy]\nurl = "tcp://127.0.0.1:9"\ntimeout_s = 0.5\n[store]\npath = "{store}"\n'
    )
    command_line = [sys.executable, "-m", "takeover.app.cli", "engine", "--config", str(config)]
    command_line += ["--status-endpoint", "tcp://127.0.0.1:0", "--command-endpoint", "tcp://127.0.0.1:0"]
    log = tmp_path / "engine.log"
    with open(log, "w") as stderr:
        proc = subprocess.Popen(command_line, stdin=subprocess.DEVNULL, stderr=stderr)
        try:
            status_ep, command_ep = _bound_endpoints(proc, log)
            ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
            sub = ctx.socket(zmq.SUB)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.connect(status_ep)
            req = ctx.socket(zmq.REQ)
            req.setsockopt(zmq.RCVTIMEO, 5000)
            req.connect(command_ep)
            try:
                deadline = time.monotonic() + 30
                status = None
                while time.monotonic() < deadline:
                    if sub.poll(100):
                        status = Status.decode(sub.recv())
                        if status.readiness == "failed":
                            break
                assert status is not None and status.readiness == "failed", log.read_text()
                assert status.problem is not None and "tcp://127.0.0.1:9" in status.problem.cause
                req.send(Command(CommandName.START_EPISODE).encode())
                with pytest.raises(RefusedError, match="could not start"):
                    decode_reply(req.recv(), CommandReply)
                assert proc.poll() is None  # still up
                req.send(Command(CommandName.QUIT).encode())
                decode_reply(req.recv(), CommandReply)
            finally:
                sub.close(0)
                req.close(0)
                ctx.term()
            assert proc.wait(timeout=30) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_a_station_that_is_not_there_is_a_failed_start_with_its_address(peers: Peers, tmp_path: Path) -> None:
    config = config_for(peers, tmp_path)
    config = replace(config, station=replace(config.station, url="tcp://127.0.0.1:9", timeout_s=0.5))
    with Running(config) as run:
        failed = run.wait(lambda s: s.readiness == "failed", timeout=20)
        assert failed.problem is not None and "tcp://127.0.0.1:9" in failed.problem.cause
        assert failed.message == f"cannot start: {failed.problem.cause}"
