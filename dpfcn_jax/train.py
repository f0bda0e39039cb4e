"""python -m dpfcn_jax.train --config=configs/X.py --workdir=W [--config.key=value ...]

Multi-host: add --coordinator_address=HOST:PORT --num_processes=N --process_id=I
(not needed under srun or with --config.distributed.enabled=True; see launch/).
"""
from absl import app, flags
from ml_collections import config_flags

from dpfcn_jax import cli, distributed, train_lib

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (configs/*.py).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints and metrics.')
distributed.define_flags()
flags.mark_flags_as_required(['config', 'workdir'])


def _train(config):
  cli.use_compilation_cache(_WORKDIR.value, config.compilation_cache)
  train_lib.train_and_evaluate(config, _WORKDIR.value)


main = cli.config_main(_CONFIG, _train)


if __name__ == '__main__':
  app.run(main)
