"""The simulated station served over the protocol, and `takeover station serve` as a process."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from takeover.app.net.ports import free_port
from takeover.app.station.metaworld_sim import MetaWorldConfig, MetaWorldStation
from takeover.app.station.remote import RemoteStation, StationRejectedError, StationUnavailableError
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


def test_cli_serves_the_fake_robot_and_stops_on_sigterm() -> None:
    url = f"tcp://127.0.0.1:{free_port()}"
    cmd = [sys.executable, "-m", "takeover.app.cli", "station", "serve", "--robot", "fake", "--endpoint", url]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with RemoteStation(url, timeout_s=1.0) as remote:
                    remote.reset()
                    assert remote.act(np.zeros(4, np.float32)).state.shape == (7,)
                break
            except StationUnavailableError:
                assert proc.poll() is None and time.monotonic() < deadline
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stderr is not None and b"serving on" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


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
