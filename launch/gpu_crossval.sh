#!/usr/bin/env bash
# Issue 20's cross-validated rows on one accelerator in one sitting: PARTS processes
# share the card (launch/crossval_parallel.sh), one row after another in the order of
# what decides the issue, until SECONDS are spent:
#   1. the networks of Table IV (DP-FCN as configs/airchange.py has it, FCN, U-Net,
#      FCN-PP) and the untrained methods, on the same folds;
#   2. the `combined` row (every new ingredient), then one row per ingredient
#      (launch/crossval_rows.sh's order).
# At the deadline every process saves a checkpoint and stops; only finished rows are
# reported. The reports (crossval.md/json, comparison.md, rows.md), every part's log and
# steps.tsv go into one archive, OUTDIR/gpu_crossval.tar.gz.
# Usage: bash launch/gpu_crossval.sh OUTDIR [SECONDS] [--folds=5 --seeds=2 --config.key=v ...]
#   SECONDS: default 480. PARTS: default half the host's cores. ROWS, METHODS: as
#   crossval_rows.sh. WORK: where the fold runs live (default OUTDIR/gpu_crossval_runs).
#   GPU_CROSSVAL_TINY=1: tiny networks on synthetic scenes, to run end to end on a CPU.
#   PYTHON=/path/to/python (default python3 on PATH).
set -uo pipefail
cd "$(dirname "$0")/.."
usage='usage: bash launch/gpu_crossval.sh OUTDIR [SECONDS] [crossval flags]'
out=${1:?$usage}
shift
seconds=480
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
mkdir -p "$out" && out=$(cd "$out" && pwd)
results=$out/gpu_crossval
work=${WORK:-$out/gpu_crossval_runs}  # the fold runs: the same command resumes them
mkdir -p "$results" "$work"
export PYTHON=${PYTHON:-python3}
export PARTS=${PARTS:-$(($(nproc) / 2 > 1 ? $(nproc) / 2 : 1))}
export ROWS=${ROWS:-combined fusion-diff ema groupnorm aug-scale aug-rotate aug-blur-noise aug-histmatch per-region extra tta loss-ce-dice loss-focal weights-1-1 weights-1-10 width16-equal-time}
export METHODS=${METHODS:-dpfcn,fcn,unet,fcnpp,cmi_otsu,else,rlse,lseluc}
if [ "${GPU_CROSSVAL_TINY:-0}" = 1 ]; then
  set -- --config.data.kind=synthetic '--config.data.train_sites=()' \
    '--config.data.val_sites=()' '--config.data.test_sites=()' --config.data.site_group= \
    --config.data.synthetic.num_scenes.train=2 --config.data.synthetic.num_scenes.val=1 \
    --config.data.synthetic.min_side=96 --config.data.synthetic.max_side=128 \
    --config.model.width=4 --config.model.jfl_width=4 --config.model.depth=2 \
    --config.data.tile=32 --config.infer.stride=24 --config.batch_size=4 \
    --config.num_train_steps=4 --config.crossval.eval_every_steps=2 --folds=2 "$@"
fi

echo -e "start\t$(date -u +%FT%TZ)\tparts=$PARTS\tseconds=$seconds" >"$results/steps.tsv"
start=$(date +%s)
# timeout signals the whole process group: every part saves its checkpoint and stops.
timeout --signal=TERM --kill-after=60 "$seconds" \
  bash launch/crossval_rows.sh configs/compare_airchange.py "$work" "$@" \
  >"$results/crossval_rows.log" 2>&1
rc=$?
echo -e "end\t$(date -u +%FT%TZ)\trc=$rc\t$(($(date +%s) - start)) s" >>"$results/steps.tsv"
# Every finished report, with its row's path; the part logs of every row.
(cd "$work" && find . \( -name crossval.md -o -name crossval.json -o -name comparison.md \
  -o -name comparison.json -o -name rows.md -o -name 'part-*.log' \) -print0 |
  tar --null -T - -czf "$results/reports.tar.gz")
tar -C "$out" -czf "$out/gpu_crossval.tar.gz" gpu_crossval
rm -rf "$results"
echo "rows finished: $(find "$work" -name crossval.json | wc -l); archive: $out/gpu_crossval.tar.gz"
