"""A non-editable install works on its own: the wheel built from the source tree carries every
package (the layout's subpackages, the shipped checkpoint), and the installed `takeover` command
runs a headless attempt from an unrelated directory.

The wheel is built offline with the test environment's own build backend, and installed without
dependencies into a new virtual environment that borrows the test environment's third-party
packages through a path file (not its editable install of Takeover, which a path file does not
activate), so nothing is downloaded and the project is imported from the wheel alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

pytestmark = [pytest.mark.sim, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "tests", "bench"
)


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_wheel_installs_and_runs_from_another_directory(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=_NOT_SOURCE)
    wheels = tmp_path / "wheels"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            ".",
        ],
        cwd=src,
    )
    (wheel,) = wheels.glob("takeover-*.whl")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    site = Path(
        _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path).strip()
    )
    (site / "third_party.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", str(wheel)], tmp_path
    )

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["MUJOCO_GL"] = os.environ.get("MUJOCO_GL", "egl")
    where = _run([str(py), "-c", "import takeover.app.cli as m; print(m.__file__)"], elsewhere, env)
    assert where.startswith(str(site)), f"takeover was imported from {where}, not from the wheel"

    takeover = [str(env_dir / "bin" / "takeover")]  # the installed entry point
    assert "usage: takeover" in _run([*takeover, "--help"], elsewhere, env)
    (elsewhere / "store").mkdir()  # a store named on the command line must exist
    out = _run(
        [
            *takeover,
            "run",
            "--headless",
            "--episodes",
            "1",
            "--operator",
            "scripted",
            "--max-steps",
            "20",
            "--store",
            str(elsewhere / "store"),
        ],
        elsewhere,
        env,
    )
    assert "0/1" in out or "1/1" in out, out
    listing = _run([*takeover, "data", "list", "--store", str(elsewhere / "store")], elsewhere, env)
    assert "20" in listing, listing
