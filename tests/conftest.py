"""Two fake CPU devices for every test, so pmap paths run as on a multi-device host."""
import os
import pathlib

import jax
import pytest

jax.config.update('jax_num_cpu_devices', 2)
# Tests build the same small programs many times (and in subprocesses): a shared
# persistent compilation cache turns each repeat compile into a disk read.
CACHE = pathlib.Path(__file__).resolve().parents[1] / '.pytest_cache' / 'jax'
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', str(CACHE))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
jax.config.update('jax_compilation_cache_dir', os.environ['JAX_COMPILATION_CACHE_DIR'])
jax.config.update('jax_persistent_cache_min_compile_time_secs', 0)
# Test models are tiny: XLA's optimisation passes cost more than they save.
os.environ.setdefault('JAX_DISABLE_MOST_OPTIMIZATIONS', '1')
jax.config.update('jax_disable_most_optimizations', True)
# On a GPU, f32 products and convolutions default to TF32 (10-bit mantissa), which the
# tolerances that pin one formulation against another are not written for.
jax.config.update('jax_default_matmul_precision', 'highest')

REPO = pathlib.Path(__file__).resolve().parents[1]

from dpfcn_jax import cli, config_files  # pylint: disable=g-import-not-at-top,wrong-import-position

# The real data sets (README): tests on them skip where the folder is missing.
DATA = config_files.data_dir(REPO / 'configs' / 'default.py')


def load_config(name='default'):
  return config_files.load(REPO / 'configs' / f'{name}.py').get_config()


def real_data(*parts):
  """DATA/parts, or a skip naming what is missing and how to provide it."""
  path = DATA.joinpath(*parts)
  if not path.exists():
    pytest.skip(f'real data not found: {path} (set ${config_files.DATA_ENV}; see README)')
  return path


# The tests' command-line runs apply config.xla_flags; so does this process, or runs
# in it would compile differently and differ from theirs in the last bits.
cli.apply_xla_flags(load_config().xla_flags)


@pytest.fixture
def tiny_config():
  return tiny()


def tiny():
  """The synthetic config shrunk to seconds: width 4, 32 px tiles, small scenes."""
  c = load_config('synthetic')
  c.model.width = 4
  c.model.jfl_width = 4
  c.model.depth = 2
  c.model.keep_prob = 0.9           # dropout on: MC-dropout and RNG paths need it
  c.data.tile = 32
  c.infer.stride = 24
  c.batch_size = 4
  c.data.synthetic.min_side = 96
  c.data.synthetic.max_side = 128
  c.data.synthetic.num_scenes.train = 2
  c.data.synthetic.num_scenes.val = 1
  c.data.synthetic.num_scenes.test = 1
  c.num_train_steps = 4
  c.log_every_steps = 2
  c.eval_every_steps = 4
  c.checkpoint_every_steps = 2
  return c
