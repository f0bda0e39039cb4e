#!/usr/bin/env bash
# Every accelerator figure of issue 23 in one run, sized for under 8 minutes on one
# H100/H200 from the compile and step times in docs/RESULTS.md (not yet run on one):
#   1. end-to-end `train` pairs/s against `benchmark --mode=train` (and --mode=data) at
#      configs/airchange_gpu.py's settings (width 64, bf16, batch 32) on synthetic scenes;
#   2. a 10000 x 10000 scene through `predict` (scene_benchmark) with the model of 1,
#      then the same scene again, to show what the compilation cache saves;
#   3. bf16 training and inference MFU at batch 256 (configs/default.py, the paper's model).
# Results (each command's log, the --json lines, summary.txt) go into one archive,
# OUTDIR/gpu_checks.tar.gz; scratch (checkpoints, scenes) is removed at the end.
# Usage: bash launch/gpu_checks.sh OUTDIR
#   GPU_CHECKS_TINY=1: every size shrunk, so that the script runs end to end on a CPU.
#   PYTHON=/path/to/python (default python3 on PATH, with `pip install -e '.[cuda]'` done).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bash launch/gpu_checks.sh OUTDIR}
mkdir -p "$out" && out=$(cd "$out" && pwd)
python=${PYTHON:-python3}
results=$out/gpu_checks
work=$(mktemp -d "$out/scratch.XXXXXX")
mkdir -p "$results"
# One cache for every step: the benchmark then loads the step that train compiled.
export JAX_COMPILATION_CACHE_DIR=$work/jax_cache

if [ "${GPU_CHECKS_TINY:-0}" = 1 ]; then
  model=(--config.model.width=4 --config.model.jfl_width=4 --config.model.depth=2
         --config.data.tile=32 --config.infer.stride=24)
  sites=(--config.data.synthetic.num_scenes.train=2 --config.data.synthetic.min_side=96
         --config.data.synthetic.max_side=128)
  batch=8 steps=6 log_every=2 runs=2 data_runs=4 mfu_batch=8 scene=300 limit=300
else
  model=()
  sites=()
  # 1500 steps: ~40 s at the 1260 pairs/s the step alone runs; 15 intervals to average.
  batch=32 steps=1500 log_every=100 runs=20 data_runs=200 mfu_batch=256 scene=10000 limit=240
fi
# Each step is cut off at its limit, so that the rest still runs and the archive is made.
# Synthetic scenes at airchange_gpu's settings: its AirChange site lists do not apply.
ratio_config=(--config=configs/airchange_gpu.py --config.data.kind=synthetic
              '--config.data.train_sites=()' '--config.data.val_sites=()'
              '--config.data.test_sites=()' "${model[@]}")

step() {  # step NAME SECONDS COMMAND...: runs it into NAME.log, notes rc and wall time
  local name=$1 seconds=$2 start rc
  shift 2
  start=$(date +%s%N)
  timeout "$seconds" "$@" >"$results/$name.log" 2>&1
  rc=$?
  echo -e "$name\trc=$rc\t$((($(date +%s%N) - start) / 1000000)) ms" >>"$results/steps.tsv"
  tail -n 1 "$results/$name.log" >"$results/$name.json"
}

finish() {
  "$python" - "$results" "$work/train/metrics.jsonl" "$batch" >"$results/summary.txt" 2>&1 <<'EOF'
import json, pathlib, statistics, sys
res, metrics, batch = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3])
def summary(name):
  try:
    return json.loads((res / f'{name}.json').read_text())
  except (OSError, ValueError):
    return {}
rates = [json.loads(l)['steps_per_s'] for l in metrics.read_text().splitlines()] \
    if metrics.exists() else []
train = statistics.median(rates[1:]) * batch if len(rates) > 1 else float('nan')  # 1st: compile
bench, data, wide = summary('bench_train'), summary('bench_data'), summary('bench_data_wide')
print(f'device: {bench.get("device")}')
print(f'train end to end: {train:.1f} pairs/s (median of {len(rates) - 1} log intervals)')
for name, s in (('benchmark train', bench), ('benchmark data', data),
                ('benchmark data, more threads', wide)):
  print(f'{name}: {s.get("pairs_per_s")} pairs/s ({s.get("loader_workers")} loader threads)')
if bench.get('pairs_per_s'):
  print(f'ratio train / benchmark: {train / bench["pairs_per_s"]:.3f}')
for name in ('mfu_train', 'mfu_infer'):
  s = summary(name)
  print(f'{name}: batch {s.get("batch_size")} {s.get("pairs_per_s")} pairs/s, MFU {s.get("mfu")}, '
        f'device peak {s.get("device_peak_mb")} MiB, compile {s.get("compile_s")} s')
def lines(name):
  path = res / f'{name}.log'
  return path.read_text().splitlines() if path.exists() else []
print('\n'.join(l for l in lines('scene') if l.startswith('| ')))
print(f'scene again, compilation cached: {(lines("scene_again") or [None])[-1]}')
EOF
  cat "$results/steps.tsv" >>"$results/summary.txt"
  tar -czf "$out/gpu_checks.tar.gz" -C "$out" gpu_checks
  rm -rf "$work"
  echo "results in $out/gpu_checks.tar.gz"
  cat "$results/summary.txt"
}
trap finish EXIT

{ nvidia-smi -L; "$python" -c 'import jax; print(jax.__version__, jax.devices())'
  git rev-parse HEAD; nproc; } >"$results/machine.txt" 2>&1

# 1. The ratio, and the model that 2 maps with.
step train $((2 * limit)) "$python" -m dpfcn_jax.train "${ratio_config[@]}" "${sites[@]}" \
  --workdir="$work/train" --config.batch_size=$batch --config.num_train_steps=$steps \
  --config.log_every_steps=$log_every --config.eval_every_steps=0 \
  --config.checkpoint_every_steps=$steps
step bench_train "$limit" "$python" -m dpfcn_jax.benchmark "${ratio_config[@]}" --mode=train \
  --batch_size=$batch --runs=$runs --json
step bench_data "$limit" "$python" -m dpfcn_jax.benchmark "${ratio_config[@]}" "${sites[@]}" \
  --mode=data --batch_size=$batch --runs=$data_runs --json
# The loader with a thread per two of the host's cores, for data.loader_workers there.
step bench_data_wide "$limit" "$python" -m dpfcn_jax.benchmark "${ratio_config[@]}" "${sites[@]}" \
  --mode=data --batch_size=$batch --runs=$data_runs --json \
  --config.data.loader_workers=$(( $(nproc) / 2 )) --config.data.prefetch_batches=$(nproc)

# 2. The scene, twice: cold, then with the compiled programs cached.
step scene "$((2 * limit))" "$python" -m dpfcn_jax.scene_benchmark --workdir="$work/train" \
  --sizes=$scene --scratch="$work/scenes"
folder=$work/scenes/${scene}x$scene
step scene_again "$limit" "$python" -m dpfcn_jax.predict --workdir="$work/train" \
  --pre="$folder/pre.tif" --post="$folder/post.tif" --out="$folder/out"

# 3. MFU at the best batch measured so far (docs/RESULTS.md).
for mode in train infer; do
  step "mfu_$mode" "$limit" "$python" -m dpfcn_jax.benchmark --config=configs/default.py \
    "${model[@]}" --config.model.dtype=bfloat16 --mode=$mode --batch_size=$mfu_batch \
    --runs=$runs --json
done
