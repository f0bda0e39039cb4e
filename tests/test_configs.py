"""configs/: the paper's values are the defaults, every config builds its model and runs
the comparison, and config files load each other from any directory."""
import pathlib

import jax
import jax.numpy as jnp
import pytest

from conftest import REPO, load_config
from dpfcn_jax import compare_lib, config_files, train_lib
from dpfcn_jax.errors import ConfigError
from dpfcn_jax.models import create_model

CONFIGS = REPO / 'configs'
NAMES = sorted(p.stem for p in CONFIGS.glob('*.py') if not p.stem.startswith('_'))


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


@pytest.mark.parametrize('name', NAMES)
def test_every_config_can_run_the_comparison(name):
  c = load_config(name)
  c.lock()  # as --config locks it
  assert compare_lib.parse_methods(c.compare.methods) == tuple(compare_lib.LABELS)
  for method in compare_lib.DEEP:
    assert compare_lib.method_config(c, method).model.name == method


def test_config_files_load_each_other_from_any_directory(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  monkeypatch.delenv(config_files.DATA_ENV, raising=False)
  c = config_files.load(CONFIGS / 'airchange.py').get_config()
  assert pathlib.Path(c.data.root) == CONFIGS.parent.parent / 'shared' / 'data' / 'sztaki-airchange'
  monkeypatch.setenv(config_files.DATA_ENV, str(tmp_path))
  assert config_files.load(CONFIGS / 'airchange.py').get_config().data.root == str(
      tmp_path / 'sztaki-airchange')
  with pytest.raises(ConfigError, match='nope.py: config file not found'):
    config_files.sibling(CONFIGS / 'default.py', 'nope')


@pytest.mark.parametrize('name', ['airchange', 'airchange_gpu'])
def test_airchange_configs_follow_the_final_model_protocol(name):
  """Issue 20: every labelled pair trains the final model, to its last step, with no
  selection on val; folds score at their own steps; the test pairs are never read."""
  c = load_config(name)
  site_names = {pathlib.PurePath(s).name for s in c.data.train_sites}
  assert len(site_names) == 10 and not set(c.data.val_sites)
  assert not site_names & {pathlib.PurePath(s).name for s in c.data.test_sites}
  assert (c.eval_every_steps, c.select_best) == (0, '')
  assert c.crossval.eval_every_steps > 0
  compare = load_config('compare_airchange')  # its 2-pair val table keeps the data's split
  assert len(compare.data.train_sites) == 8 and len(compare.data.val_sites) == 2
