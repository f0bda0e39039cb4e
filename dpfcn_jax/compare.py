"""python -m dpfcn_jax.compare --config=configs/X.py --workdir=W --split=val|test

Runs every method of config.compare.methods (Table IV), training the deep ones in
W/<method> unless a finished checkpoint is there; writes W/compare/<split>/.
"""
from absl import app, flags
from ml_collections import config_flags

from dpfcn_jax import cli, compare_lib

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (configs/*.py).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'W: W/<method> per network, W/compare outputs.')
_SPLIT = flags.DEFINE_string('split', 'val', 'train | val | test')
flags.mark_flags_as_required(['config', 'workdir'])

main = cli.config_main(_CONFIG, lambda c: compare_lib.compare(c, _WORKDIR.value, _SPLIT.value),
                       multihost=False)

if __name__ == '__main__':
  app.run(main)
