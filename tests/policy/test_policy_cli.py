"""`takeover policy serve|train`: exit codes, one-line errors, a real store, a real server process."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from takeover.app.cli import policy as policy_cli
from takeover.app.policy import default_checkpoint_path
from takeover.app.policy.checkpoint import load_policy
from takeover.app.policy.client import PolicyClient
from takeover.storage.store import Store
from takeover.storage.testing import make_episode


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="takeover")
    policy_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_serve_with_a_missing_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["policy", "serve", "--checkpoint", str(tmp_path / "nope.safetensors")]) == 2
    assert "does not exist" in _one_error_line(capsys.readouterr().err)


def test_serve_with_a_corrupt_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    assert run(["policy", "serve", "--checkpoint", str(bad)]) == 2
    assert "bad.safetensors" in _one_error_line(capsys.readouterr().err)


def test_the_shipped_checkpoint_loads() -> None:
    policy = load_policy(default_checkpoint_path())
    assert policy.predict(np.zeros(39, dtype=np.float32)).shape[1] == 4


def test_serve_without_the_shipped_checkpoint_says_how_to_get_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import takeover.app.policy as policy_pkg

    monkeypatch.setattr(policy_pkg, "default_checkpoint_path", lambda: tmp_path / "missing.safetensors")
    assert run(["policy", "serve", "--endpoint", "tcp://127.0.0.1:*"]) == 2
    assert "takeover policy train" in _one_error_line(capsys.readouterr().err)


def test_serve_with_curve_keys_needs_both_sides(
    tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from takeover.app.net.curve import generate_keypair

    generate_keypair(tmp_path, "server")
    argv = [
        "policy",
        "serve",
        "--checkpoint",
        str(checkpoint),
        "--curve-secret",
        str(tmp_path / "server.key_secret"),
    ]
    assert run(argv) == 2  # a secret key without any allowed client
    assert "CURVE" in _one_error_line(capsys.readouterr().err)


def test_serve_refuses_a_remote_endpoint(checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["policy", "serve", "--checkpoint", str(checkpoint), "--endpoint", "tcp://0.0.0.0:5555"]) == 2
    assert "loopback" in _one_error_line(capsys.readouterr().err)


def test_serve_process_answers_and_stops_on_sigterm(checkpoint: Path) -> None:
    script = (
        "import argparse, sys\n"
        "from takeover.app.cli import policy as policy_cli\n"
        "p = argparse.ArgumentParser()\n"
        "policy_cli.add_parser(p.add_subparsers(dest='command', required=True))\n"
        "a = p.parse_args(sys.argv[1:])\n"
        "sys.exit(a.func(a))\n"
    )
    cmd = [
        sys.executable,
        "-c",
        script,
        "policy",
        "serve",
        "--checkpoint",
        str(checkpoint),
        "--open-loop-steps",
        "3",
    ]
    proc = subprocess.Popen([*cmd, "--endpoint", "tcp://127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().strip()
        assert line.startswith("policy mlp-chunk-") and " serving on tcp://127.0.0.1:" in line, line
        url = line.rsplit(" ", 1)[1]
        with PolicyClient(url, timeout_s=5.0) as client:
            health = client.health()
            assert health.policy_id == load_policy(checkpoint).policy_id
            assert health.open_loop_steps == 3
            assert client.infer(np.zeros(39, np.float32), 0).actions.shape[1] == 4
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - t0 < 2.0
        assert proc.stderr.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.fixture
def store_with_tag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TAKEOVER_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "store"
    with Store.create(root) as store:
        for i in range(3):
            ep = make_episode(f"ep{i}", 20, seed=i, state_dim=39, action_dim=4, takeover_at=8)
            store.add_episode(ep)
        store.commit("demos-v1")
    return root


def test_train_from_a_tagged_version(
    store_with_tag: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out" / "policy.safetensors"
    argv = ["policy", "train", "--tag", "demos-v1", "--out", str(out), "--epochs", "3", "--seed", "1"]
    assert run([*argv, "--store", str(store_with_tag)]) == 0
    printed = capsys.readouterr().out
    assert "on 60 steps from 3 episodes" in printed and str(out) in printed
    policy = load_policy(out)
    assert policy.policy_id in printed
    assert policy.metadata["tag"] == "demos-v1" and policy.metadata["epochs"] == 3
    assert len(policy.metadata["version"]) >= 12


def test_train_with_an_unknown_tag(
    store_with_tag: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["policy", "train", "--tag", "nope", "--out", str(tmp_path / "p.safetensors"), "--epochs", "1"]
    assert run([*argv, "--store", str(store_with_tag)]) == 2
    assert "nope" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "p.safetensors").exists()
