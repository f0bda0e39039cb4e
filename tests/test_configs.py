"""configs/: the paper's values are the defaults, and every config builds its model."""
import pathlib

import jax
import jax.numpy as jnp
import pytest

from conftest import load_config
from dpfcn_jax import train_lib
from dpfcn_jax.models import create_model

NAMES = sorted(p.stem for p in (pathlib.Path(__file__).parents[1] / 'configs').glob('*.py')
               if not p.stem.startswith('_'))


def test_default_holds_the_paper_values():
  c = load_config('default')
  assert (c.model.name, c.model.width, c.model.depth, c.model.jfl_width) == ('dpfcn', 64, 4, 64)
  assert (c.model.keep_prob, c.model.shared_dfe, c.model.num_classes) == (0.6, False, 2)
  assert (c.optimizer, c.learning_rate, c.loss, c.data.tile) == ('adam', 1e-4, 'ce', 128)


def test_jfl_width_is_not_tied_to_width():
  c = load_config('default')
  c.model.jfl_width = 8  # as --config.model.jfl_width=8 does
  assert c.model.width == 64


@pytest.mark.parametrize('name', NAMES)
def test_every_config_is_consistent_and_builds_its_model(name):
  c = load_config(name)
  train_lib.check_config(c)
  x = jnp.zeros((1, c.data.tile, c.data.tile, c.data.bands))
  shapes = jax.eval_shape(lambda: create_model(c.model).init(jax.random.key(0), x, x,
                                                             train=False))
  assert jax.tree.leaves(shapes)
