#!/usr/bin/env bash
# Cloud TPU VM slice (one or many hosts): starts the same training command on every
# worker with gcloud; jax finds the slice's hosts itself.
# Usage: bash launch/tpu_vm.sh TPU_NAME ZONE WORKDIR [CONFIG] [--config.key=value ...]
#
# Before the first run, put the code and its dependencies on every worker, e.g.
#   gcloud compute tpus tpu-vm ssh TPU_NAME --zone=ZONE --worker=all --command='
#     git clone REPO_URL dpfcn_jax && pip install -e ./dpfcn_jax "jax[tpu]"'
# Adapt it:
#   - REPO_DIR: where the repository sits on the workers (default dpfcn_jax, in $HOME).
#   - PYTHON: the workers' interpreter (default python3).
#   - WORKDIR must be one directory every worker sees (a Filestore/NFS mount or a
#     gcsfuse-mounted bucket): checkpoints are written by all workers together and
#     the metrics by worker 0, as plain files.
#   - --config.batch_size is global and must divide by the slice's chip count.
#   - mixed precision: add --config.model.dtype=bfloat16.
#   - project: add --project=... to the gcloud line, or set it with gcloud config.
#   - evaluate afterwards on any single machine (CPU included):
#     python -m dpfcn_jax.eval --config=CONFIG --workdir=WORKDIR --split=test
set -euo pipefail
usage='usage: bash launch/tpu_vm.sh TPU_NAME ZONE WORKDIR [CONFIG] [--config.key=value ...]'
name=${1:?$usage}
zone=${2:?$usage}
workdir=${3:?$usage}
shift 3
config=configs/synthetic.py
if [ $# -gt 0 ] && [[ $1 != --* ]]; then
  config=$1
  shift
fi
repo_dir=${REPO_DIR:-dpfcn_jax}
python=${PYTHON:-python3}
# Quoted once here so the remote shell sees each flag as one word.
command=$(printf '%q ' cd "$repo_dir")'&& '$(printf '%q ' "$python" -m dpfcn_jax.train \
  --config="$config" --workdir="$workdir" --config.distributed.enabled=True "$@")
gcloud compute tpus tpu-vm ssh "$name" --zone="$zone" --worker=all --command="$command"
