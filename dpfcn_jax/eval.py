"""python -m dpfcn_jax.eval --config=configs/X.py --workdir=W --split=val|test

Takes the same multi-host flags as dpfcn_jax.train; one process is enough to
evaluate a checkpoint trained on any number of devices or processes.
"""
from absl import app, flags
from ml_collections import config_flags

from dpfcn_jax import cli, distributed, eval_lib

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (configs/*.py).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory holding the checkpoints.')
_SPLIT = flags.DEFINE_string('split', 'val', 'train | val | test')
distributed.define_flags()
flags.mark_flags_as_required(['config', 'workdir'])

main = cli.config_main(_CONFIG, lambda c: eval_lib.evaluate(c, _WORKDIR.value, _SPLIT.value))

if __name__ == '__main__':
  app.run(main)
