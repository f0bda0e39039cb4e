"""python -m dpfcn_jax.eval --config=configs/X.py --workdir=W --split=val|test"""
from absl import app, flags
from ml_collections import config_flags

from dpfcn_jax import cli, eval_lib

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (configs/*.py).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory holding the checkpoints.')
_SPLIT = flags.DEFINE_string('split', 'val', 'train | val | test')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  cli.setup()
  with cli.user_errors():
    eval_lib.evaluate(_CONFIG.value, _WORKDIR.value, _SPLIT.value)


if __name__ == '__main__':
  app.run(main)
