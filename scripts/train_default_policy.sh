#!/usr/bin/env bash
# Reproduce the policy checkpoint that ships with Takeover (app/assets/policy/).
#
# 1. Record expert demonstrations with Takeover itself (the task's scripted expert drives),
# 2. freeze them as a version, 3. train the chunked MLP by behaviour cloning on it,
# 4. run the new policy alone on unseen seeds and print its success rate.
# The demonstration budget is kept small on purpose: the shipped policy should succeed about
# half the time, so that operators (and the scripted operator) have failures to take over from.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMOS=${DEMOS:-10}
EVAL=${EVAL:-30}
OUT=${OUT:-app/assets/policy/pick-place-mlp.safetensors}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export PATH="$PWD/.venv/bin:$PATH"

takeover run --headless --no-policy --operator expert --episodes "$DEMOS" --seed 1000 \
    --no-pacing --store "$WORK/demos"
takeover data commit --tag "expert-demos-$DEMOS" --store "$WORK/demos"
takeover policy train --tag "expert-demos-$DEMOS" --store "$WORK/demos" --out "$OUT" --epochs 200 --seed 0
takeover run --headless --operator keyboard --checkpoint "$OUT" --episodes "$EVAL" --seed 0 \
    --max-steps 150 --no-pacing --store "$WORK/eval" | tail -n 1
