"""python -m dpfcn_jax.crossval --config=configs/X.py --workdir=W [--folds=K] [--seeds=S]
    [--methods=cmi_otsu,else,rlse,lseluc,fcn,unet,fcnpp,dpfcn] [--part=I/N]

Cross-validates the config over whole sites (train + val + data.extra_sites, never the
test sites): K folds stratified by data.site_group, S training seeds. Writes
W/crossval.json, W/crossval.md (with the final model's training command) and
W/crossval_f1.png; rerun after a kill to resume. With --methods (a configs/compare_*.py
config), each method of Table IV on the same folds in W/<method>, and W/comparison.md
with one row per method. --part=I/N trains only every N-th run, starting at the I-th,
beside N - 1 other processes (launch/crossval_parallel.sh); the same command without
--part then writes the report. Multi-host flags as for train.
"""
import functools

from absl import app, flags
from ml_collections import config_flags

from dpfcn_jax import cli, crossval_compare, crossval_lib, distributed

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (configs/*.py).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for the fold runs and the report.')
_FOLDS = flags.DEFINE_integer('folds', 5, 'Number of folds of whole sites.')
_SEEDS = flags.DEFINE_integer('seeds', 1, 'Training seeds per fold: config.seed, +1, ...')
_METHODS = flags.DEFINE_string('methods', '', 'Comma-separated methods of Table IV to compare '
                               "(compare_lib.LABELS); '' = the config as it is.")
_PART = flags.DEFINE_string('part', '', "I/N: train runs I, I + N, ... only, and no report; "
                            "'' = every run, then the report.")
distributed.define_flags()
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  cli.setup(_CONFIG.value.xla_flags)
  with cli.user_errors():
    distributed.initialize_from_flags(_CONFIG.value.distributed)
    run = (functools.partial(crossval_compare.run, methods=_METHODS.value) if _METHODS.value
           else crossval_lib.run)
    run(_CONFIG.value, _WORKDIR.value, num_folds=_FOLDS.value, num_seeds=_SEEDS.value,
        part=crossval_lib.parse_part(_PART.value),
        config_file=config_flags.get_config_filename(flags.FLAGS['config']),
        overrides=config_flags.get_override_values(flags.FLAGS['config']))


if __name__ == '__main__':
  app.run(main)
