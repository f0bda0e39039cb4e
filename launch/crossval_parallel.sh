#!/usr/bin/env bash
# Cross-validation in N processes at once, then its report. Each process trains every
# N-th (seed, fold) run (`crossval --part=I/N`): a width-12 AirChange fold leaves a GPU
# mostly idle and its host-side input pipeline on one core, so N folds share one card
# and N cores. When all are done, the same command without --part writes the report
# (it trains whatever a part left unfinished first).
# Usage: bash launch/crossval_parallel.sh N --config=C --workdir=W [--folds=K --seeds=S
#        --methods=... --config.key=value ...]
#   Logs: W/part-I.log. Interpreter: PYTHON (default python3 on PATH).
#   SIGTERM or Ctrl-C stops every part at its next step, with a checkpoint; run the same
#   command again to resume.
# On a CPU host every process already uses every core: N > 1 gains little there.
set -euo pipefail
cd "$(dirname "$0")/.."
usage='usage: bash launch/crossval_parallel.sh N --config=C --workdir=W [crossval flags]'
parts=${1:?$usage}
shift
if ! [[ $parts =~ ^[1-9][0-9]*$ ]]; then
  echo "$usage (N: a positive process count, got '$parts')" >&2
  exit 2
fi
python=${PYTHON:-python3}
workdir=
for a in "$@"; do
  case $a in --workdir=*) workdir=${a#--workdir=} ;; esac
done
if [ -z "$workdir" ]; then
  echo "$usage (no --workdir)" >&2
  exit 2
fi
mkdir -p "$workdir"
# Each process takes GPU memory as it needs it, not three quarters of the card at start.
export XLA_PYTHON_CLIENT_PREALLOCATE=${XLA_PYTHON_CLIENT_PREALLOCATE:-false}

pids=()
stopped=0
trap 'stopped=1; kill -TERM "${pids[@]}" 2>/dev/null || true' TERM INT
for ((i = 0; i < parts; i++)); do
  "$python" -m dpfcn_jax.crossval "$@" --part="$i/$parts" > "$workdir/part-$i.log" 2>&1 &
  pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
  while true; do
    rc=0
    wait "${pids[$i]}" || rc=$?
    # A signal to this script interrupts `wait` while the part is still saving.
    if ((rc > 128)) && kill -0 "${pids[$i]}" 2>/dev/null; then continue; fi
    break
  done
  if ((rc != 0)); then
    echo "part $i/$parts failed (exit $rc): see $workdir/part-$i.log" >&2
    failed=1
  fi
done
if ((stopped)); then
  echo "stopped: every part saved a checkpoint; run the same command again to resume" >&2
  exit 1
fi
if ((failed)); then
  exit 1
fi
"$python" -m dpfcn_jax.crossval "$@"
