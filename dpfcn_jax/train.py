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


def main(argv):
  del argv
  cli.setup(_CONFIG.value.xla_flags)
  with cli.user_errors():
    distributed.initialize_from_flags(_CONFIG.value.distributed)
    cli.use_compilation_cache(_WORKDIR.value, _CONFIG.value.compilation_cache)
    train_lib.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == '__main__':
  app.run(main)
