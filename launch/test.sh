#!/usr/bin/env bash
# Sets up a virtual environment with the test extras and runs the test suite, in parallel.
# Usage: bash launch/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e '.[test]'
# One worker per core: many tests wait on subprocesses importing jax (6.6 min on a
# 2-core host like CI's, 10.3 min in one process; docs/RESULTS.md).
"$venv/bin/python" -m pytest -q -n auto "$@"
