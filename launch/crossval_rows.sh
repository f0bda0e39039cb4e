#!/usr/bin/env bash
# The issue-20 recipe rows, cross-validated one after another on the same folds: first
# every method of Table IV (WORKDIR/methods/<method>, WORKDIR/methods/comparison.md), then
# each recipe row, the config plus that row's overrides (WORKDIR/<row>/crossval.md), and
# last WORKDIR/rows.md: pooled CV F1 and QA of the base DP-FCN (methods/dpfcn) and of
# every row, one line each.
# Usage: bash launch/crossval_rows.sh CONFIG WORKDIR [--folds=5 --seeds=2 --config.key=value ...]
#   CONFIG: a configs/compare_*.py (it holds the networks' overrides); the other flags
#   go to every run, before the row's own overrides.
#
# Adapt it:
#   - ROWS="ema tta" runs only the rows named (default: all of them, in order).
#   - METHODS=cmi_otsu,dpfcn compares fewer methods (default: all eight).
#   - interpreter: PYTHON=/path/to/venv/bin/python (default python3 on PATH).
#   - PARTS=8 trains each row's runs in 8 processes at once (launch/crossval_parallel.sh):
#     on one GPU, several width-12 folds run side by side.
# A run stopped part-way (SIGTERM, a kill) resumes when the same command runs again:
# finished folds are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
usage='usage: bash launch/crossval_rows.sh CONFIG WORKDIR [--folds=K --seeds=S --config.key=value ...]'
config=${1:?$usage}
workdir=${2:?$usage}
shift 2
python=${PYTHON:-python3}
methods=${METHODS:-cmi_otsu,else,rlse,lseluc,fcn,unet,fcnpp,dpfcn}

# name, then the overrides of configs/airchange.py that make the row.
all_rows=(
  'ema --config.ema_decay=0.995'
  'groupnorm --config.model.norm=group'
  'aug-scale --config.data.scale_jitter=0.25'
  'aug-rotate --config.data.rotate_any=True'
  'aug-blur-noise --config.data.blur=0.2 --config.data.noise=0.02'
  'aug-histmatch --config.data.histogram_match=0.5'
  'loss-ce-dice --config.loss=ce+dice'
  'loss-focal --config.loss=focal'
  'weights-1-1 --config.class_weights=(1.0,1.0)'
  'weights-1-10 --config.class_weights=(1.0,10.0)'
  # The cross-sensor Archieve pair trains every fold and is held out by none: same folds.
  "extra --config.data.train_only_sites=('extra/archieve',)"
  'tta --config.infer.tta=True'
  # FC-Siam-diff's cue: |f_pre - f_post| beside the two DFE maps into the JFL.
  'fusion-diff --config.model.fusion=concat_diff'
  # One model per region (Szada, Tiszadob) on that region's pairs, against the joint one.
  'per-region --config.crossval.per_group=True'
  # Every new ingredient at once: the 3-fold, 500-step screen's winner (docs/RESULTS.md).
  'combined --config.model.norm=group --config.ema_decay=0.99 --config.data.scale_jitter=0.25 --config.data.rotate_any=True --config.data.blur=0.2 --config.data.noise=0.02 --config.data.histogram_match=0.5'
  # Width 16 took 2.3 s a step against width 12's 1.3 s (configs/airchange.py): 2000 steps
  # of width 12 take the time of 1130 of width 16.
  'width16-equal-time --config.model.width=16 --config.model.jfl_width=16 --config.num_train_steps=1130'
)

crossval() {
  if ((${PARTS:-1} > 1)); then
    PYTHON=$python bash launch/crossval_parallel.sh "$PARTS" --config="$config" "$@"
  else
    "$python" -m dpfcn_jax.crossval --config="$config" "$@"
  fi
}

crossval --workdir="$workdir/methods" --methods="$methods" "$@"
if [ ! -f "$workdir/methods/comparison.md" ]; then
  echo "the method comparison stopped before its end: run the same command again" >&2
  exit 1
fi

runs=()
[[ ,$methods, == *,dpfcn,* ]] && runs+=(methods/dpfcn)
for row in "${all_rows[@]}"; do
  read -r -a words <<< "$row"
  name=${words[0]}
  if [ -n "${ROWS:-}" ] && [[ " $ROWS " != *" $name "* ]]; then
    continue
  fi
  crossval --workdir="$workdir/$name" "$@" "${words[@]:1}"
  if [ ! -f "$workdir/$name/crossval.json" ]; then
    echo "row $name stopped before its end: run the same command again" >&2
    exit 1
  fi
  runs+=("$name")
done
"$python" -m dpfcn_jax.crossval_table --workdir="$workdir" --name=rows "${runs[@]}"
