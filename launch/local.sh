#!/usr/bin/env bash
# One machine, every device it has (CPU, all visible GPUs, or one TPU VM host), one
# process: train, then evaluate the test split.
# Usage: bash launch/local.sh WORKDIR [CONFIG] [--config.key=value ...]
#   CONFIG defaults to configs/synthetic.py; extra flags go to both train and eval.
#
# Adapt it:
#   - which GPUs: CUDA_VISIBLE_DEVICES=0,1 bash launch/local.sh ...
#   - mixed precision (GPU/TPU): add --config.model.dtype=bfloat16 (f32 parameters
#     and optimiser state, bf16 compute, f32 loss).
#   - --config.batch_size is global: it must divide by the device count.
#   - interpreter: PYTHON=/path/to/venv/bin/python (default python3 on PATH, with
#     `pip install -e .` or `pip install -e '.[cuda]'` done).
#   - several machines: launch/slurm.sbatch, launch/tpu_vm.sh, or run this same train
#     command on each with --coordinator_address=HOST0:PORT --num_processes=N
#     --process_id=I.
set -euo pipefail
cd "$(dirname "$0")/.."
workdir=${1:?usage: bash launch/local.sh WORKDIR [CONFIG] [--config.key=value ...]}
shift
config=configs/synthetic.py
if [ $# -gt 0 ] && [[ $1 != --* ]]; then
  config=$1
  shift
fi
python=${PYTHON:-python3}
"$python" -m dpfcn_jax.train --config="$config" --workdir="$workdir" "$@"
"$python" -m dpfcn_jax.eval --config="$config" --workdir="$workdir" --split=test "$@"
