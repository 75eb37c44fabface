"""The simulated station served over the protocol, and `takeover station serve` as a process."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

from takeover.app.net.children import start_child
from takeover.app.station.metaworld_sim import MetaWorldConfig, MetaWorldStation
from takeover.app.station.remote import RemoteStation, StationRejectedError
from takeover.app.station.server import StationServer, StationServerConfig


@pytest.mark.sim
def test_remote_sim_matches_the_in_process_sim() -> None:
    config = MetaWorldConfig(cameras=("corner",), width=64, height=48)
    srv = StationServer(
        MetaWorldStation(config), StationServerConfig(endpoint="tcp://127.0.0.1:*", poll_ms=20)
    )
    srv.bind()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        with RemoteStation(srv.endpoint, timeout_s=10.0) as remote, MetaWorldStation(config) as local:
            assert remote.info == local.info
            a, b = remote.reset(seed=11), local.reset(seed=11)
            np.testing.assert_array_equal(a.state, b.state)
            for _ in range(5):
                expert = remote.expert_action()
                assert expert is not None
                a, b = remote.act(expert), local.act(expert)
            np.testing.assert_array_equal(a.state, b.state)
            np.testing.assert_array_equal(a.ee_target, b.ee_target)
            assert a.images["corner"].shape == (48, 64, 3)
            with pytest.raises(StationRejectedError, match="outside the station's limits"):
                remote.act(np.array([0, 0, 0, 2], np.float32))
            np.testing.assert_array_equal(remote.observe().state, a.state)  # nothing moved
    finally:
        srv.stop()
        thread.join(timeout=5)
        srv.close()


def test_cli_serves_the_fake_robot_on_the_port_it_reports_and_stops_on_sigterm() -> None:
    cmd = [sys.executable, "-m", "takeover.app.cli", "station", "serve", "--robot", "fake"]
    child = start_child([*cmd, "--endpoint", "tcp://127.0.0.1:0"], "station server")
    try:
        url = child.wait_ready(("endpoint",), timeout_s=30)["endpoint"]
        assert url.startswith("tcp://127.0.0.1:") and not url.endswith(":0")
        with RemoteStation(url, timeout_s=5.0) as remote:  # serving as soon as it reported
            remote.reset()
            assert remote.act(np.zeros(4, np.float32)).state.shape == (7,)
        child.process.send_signal(signal.SIGTERM)
        assert child.wait(timeout_s=10) == 0
    finally:
        child.stop()


def test_cli_parent_fd_that_is_not_a_socket_is_one_line() -> None:
    out = subprocess.run(  # fd 0 is /dev/null here
        [sys.executable, "-m", "takeover.app.cli", "station", "serve", "--robot", "fake", "--parent-fd", "0"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.startswith("error: --parent-fd 0: not an open socket") and out.stderr.count("\n") == 1


def test_cli_refuses_a_remote_endpoint_without_keys() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "takeover.app.cli", "station", "serve", "--endpoint", "tcp://0.0.0.0:5556"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "not on loopback" in out.stderr
    out = subprocess.run(
        [
            sys.executable,
            *("-m", "takeover.app.cli", "station", "serve", "--allow-remote"),
            *("--endpoint", "tcp://0.0.0.0:5556"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "needs CURVE keys" in out.stderr
