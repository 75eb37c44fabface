#!/usr/bin/env bash
# Set up a working environment from a fresh clone, then run one job.
#   scripts/dev.sh console [args]  open the operator console on the default simulated station
#   scripts/dev.sh test [pytest args]  lint, type-check, check import contracts, run the tests
#   scripts/dev.sh setup           only set up
# Setup is idempotent: system libraries are installed once (apt-get, as root or through sudo),
# the virtual environment .venv is rebuilt only when pyproject.toml changes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

# Libraries MuJoCo needs to render without a GPU (EGL / OSMesa from Mesa), Qt's xcb platform,
# and Xvfb for screenshots of the real window on machines without a screen.
SYSTEM_PACKAGES=(libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libosmesa6 libglib2.0-0
                 libxkbcommon0 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1
                 libxcb-shape0 libxcb-render-util0 libxcb-image0 libxcb-xkb1 libxcb-randr0
                 libfontconfig1 libdbus-1-3 fonts-dejavu-core xvfb xauth libhidapi-hidraw0)

setup_system() {
    command -v dpkg >/dev/null 2>&1 || { echo "setup: not a Debian-like system; install the equivalents of: ${SYSTEM_PACKAGES[*]}" >&2; return 0; }
    local missing=()
    for p in "${SYSTEM_PACKAGES[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
            echo "setup: please install these system packages: ${missing[*]}" >&2; return 1; fi
    fi
    echo "setup: installing system packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_python() {
    local stamp="$VENV/.takeover-setup"
    local want
    want=$(cat pyproject.toml scripts/dev.sh | sha256sum | cut -c1-16)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/takeover" ]; then return 0; fi
    echo "setup: building $VENV (first run takes a few minutes)"
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # The CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
    "$VENV/bin/python" -m pip install -q "torch==2.13.0"
    "$VENV/bin/python" -m pip install -q -e ".[sim,dev]"
    echo "$want" > "$stamp"
}

# mypy checks the package `takeover` through links named as the package maps its folders.
setup_typecheck() {
    local dir="$VENV/typecheck/takeover"
    mkdir -p "$dir"
    for d in app teleop recorder annotation storage; do ln -sfn "../../../$d" "$dir/$d"; done
}

cmd=${1:-console}; shift || true
setup_system
setup_python
export PATH="$VENV/bin:$PATH"
export MUJOCO_GL=${MUJOCO_GL:-egl}
case "$cmd" in
    setup) echo "setup: done" ;;
    console) exec takeover run "$@" ;;
    test)
        ruff check .
        ruff format --check .
        setup_typecheck
        mypy
        lint-imports
        exec python -m pytest "$@"
        ;;
    *) echo "usage: scripts/dev.sh {console|test|setup} [args]" >&2; exit 2 ;;
esac
