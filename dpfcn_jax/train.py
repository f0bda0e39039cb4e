"""python -m dpfcn_jax.train --config=configs/X.py --workdir=W [--config.key=value ...]"""
from absl import app, flags
from ml_collections import config_flags

from dpfcn_jax import cli, train_lib

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (configs/*.py).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints and metrics.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  cli.setup()
  with cli.user_errors():
    train_lib.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == '__main__':
  app.run(main)
