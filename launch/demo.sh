#!/usr/bin/env bash
# The main job on the embedded synthetic default: set up, train, evaluate on the
# test scenes, print the score table and where the maps are. About 10 min on a
# 2-core CPU. Usage: bash launch/demo.sh [WORKDIR] [extra --config.* flags]
set -euo pipefail
cd "$(dirname "$0")/.."
workdir=${1:-runs/synthetic}
shift || true
venv=${VENV:-.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e .
"$venv/bin/python" -m dpfcn_jax.train --config=configs/synthetic.py --workdir="$workdir" "$@"
"$venv/bin/python" -m dpfcn_jax.eval --config=configs/synthetic.py --workdir="$workdir" \
  --split=test "$@"
