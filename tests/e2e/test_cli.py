"""The command line: --help everywhere, and bad input gets one clear line and a non-zero exit."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from takeover.app.cli import build_parser


def takeover(*args: str, tmp_path: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TAKEOVER_STORE": str(tmp_path / "default-store")}
    return subprocess.run(
        [sys.executable, "-m", "takeover.app.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def subcommand_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.append((*prefix, name))
                paths.extend(subcommand_paths(sub, (*prefix, name)))
    return paths


def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    paths = subcommand_paths(build_parser())
    assert {("run",), ("data", "commit"), ("data", "list"), ("policy", "serve"), ("policy", "train")} <= set(
        paths
    )
    for path in paths:
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args([*path, "--help"])
        assert exit_info.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: takeover " + " ".join(path)), path


def test_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    proc = takeover("data", "list", "--store", str(tmp_path / "nowhere"), tmp_path=tmp_path)
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "nowhere" in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_tag_is_a_clear_error(tmp_path: Path) -> None:
    from takeover.storage.store import Store

    Store.create(tmp_path / "store").close()
    proc = takeover("data", "show", "no-such-tag", "--store", str(tmp_path / "store"), tmp_path=tmp_path)
    assert proc.returncode == 2
    assert "no-such-tag" in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_tag_in_python_raises_a_storage_error(tmp_path: Path) -> None:
    from takeover.storage import pull
    from takeover.storage.errors import UnknownTagError
    from takeover.storage.store import Store

    Store.create(tmp_path / "store").close()
    with pytest.raises(UnknownTagError, match="no-such-tag"):
        pull("no-such-tag", store=tmp_path / "store", cache_dir=tmp_path / "cache")


def test_policy_server_not_running_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"tcp://127.0.0.1:{port}"
    cfg = tmp_path / "quick.toml"
    cfg.write_text("[policy]\ntimeout_s = 1.0\n")
    proc = takeover("run", "--headless", "--config", str(cfg), "--policy-url", url, tmp_path=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert url in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[loop]\nrate_hz = 'fast'\n", "loop.rate_hz"),
        ("[loop\n", "not valid TOML"),
        ("[robot]\n", "unknown key 'robot'"),
    ],
)
def test_malformed_config_is_a_clear_error(tmp_path: Path, text: str, expected: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    proc = takeover("run", "--headless", "--config", str(cfg), tmp_path=tmp_path)
    assert proc.returncode == 2
    assert expected in proc.stderr and str(cfg) in proc.stderr and "Traceback" not in proc.stderr


def test_ask_ahead_reaches_the_loop_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    from takeover.app.cli.run import _config_from

    args = build_parser().parse_args(["run", "--headless", "--ask-ahead", "3"])
    assert _config_from(args).loop.inference_lead_steps == 3
    assert _config_from(build_parser().parse_args(["run"])).loop.inference_lead_steps == 0
    for bad in ("-1", "soon"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["run", "--ask-ahead", bad])
        assert "--ask-ahead" in capsys.readouterr().err


@pytest.mark.sim
def test_a_workspace_outside_the_stations_box_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "box.toml"
    cfg.write_text("[loop.safety]\nz_min = 2.0\nz_max = 3.0\n")  # above everything the arm can reach
    proc = takeover("run", "--headless", "--episodes", "1", "--config", str(cfg), tmp_path=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "[loop.safety]" in proc.stderr and "do not overlap" in proc.stderr
    assert "Traceback" not in proc.stderr
