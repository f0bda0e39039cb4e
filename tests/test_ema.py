"""EMA of the parameters: the recurrence, what validation and restores use, resume, old runs."""
import json

import jax
import numpy as np
import pytest

from dpfcn_jax import checkpoint, ema, scene_map, train_lib, train_state
from dpfcn_jax.errors import ConfigError

DECAY = 0.5  # far from 1, so three steps move the average visibly away from the params


def _leaves(tree):
  return [np.asarray(x, np.float64) for x in jax.tree.leaves(jax.device_get(tree))]


def _checkpointed_params(config, workdir, step):
  target = jax.eval_shape(lambda: train_state.create_train_state(
      config, jax.random.key(0, impl=config.prng_impl)))
  mngr = checkpoint.manager(workdir, create=False)
  return checkpoint.restore(mngr, target, train_state.replicated_sharding(), step).params


def test_validation_and_restore_use_the_ema_which_follows_its_recurrence(
    tiny_config, tmp_path, monkeypatch):
  c = tiny_config
  c.ema_decay, c.num_train_steps, c.eval_every_steps, c.checkpoint_every_steps = DECAY, 3, 3, 1
  c.lr_schedule = 'constant'  # no warmup: every step moves the parameters
  validated = []
  evaluate_sites = train_lib.eval_lib.evaluate_sites

  def recorded(mapper, sites, *args):
    validated.append(mapper.params)
    return evaluate_sites(mapper, sites, *args)

  monkeypatch.setattr(train_lib.eval_lib, 'evaluate_sites', recorded)
  state = train_lib.train_and_evaluate(c, str(tmp_path))
  assert isinstance(state, ema.EmaTrainState)
  expected = None
  for t in (1, 2, 3):
    params = _leaves(_checkpointed_params(c, str(tmp_path), t))
    w = (1 - DECAY) / (1 - DECAY**t)
    expected = params if expected is None else [e + w * (p - e) for e, p in
                                                zip(expected, params)]
  for got, want in zip(_leaves(state.ema_params), expected):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
  assert any(np.abs(e - p).max() > 1e-4 for e, p in zip(_leaves(state.ema_params),
                                                        _leaves(state.params)))
  for got, want in zip(_leaves(validated[0]), _leaves(state.ema_params)):
    np.testing.assert_array_equal(got, want)
  _, restored, saved = scene_map.restore_params(str(tmp_path))
  assert saved.ema_decay == DECAY
  for got, want in zip(_leaves(restored), _leaves(state.ema_params)):
    np.testing.assert_array_equal(got, want)


def test_a_resumed_ema_run_equals_an_uninterrupted_one(tiny_config, tmp_path):
  tiny_config.ema_decay, tiny_config.eval_every_steps = DECAY, 0
  straight = train_lib.train_and_evaluate(tiny_config, str(tmp_path / 'a'))
  tiny_config.num_train_steps = 2
  train_lib.train_and_evaluate(tiny_config, str(tmp_path / 'b'))
  tiny_config.num_train_steps = 4
  resumed = train_lib.train_and_evaluate(tiny_config, str(tmp_path / 'b'))
  assert int(resumed.step) == 4
  for tree in ('params', 'ema_params', 'opt_state'):
    for a, b in zip(_leaves(getattr(straight, tree)), _leaves(getattr(resumed, tree))):
      np.testing.assert_array_equal(a, b)


def test_a_checkpoint_from_before_ema_restores(tiny_config, tmp_path):
  tiny_config.num_train_steps, tiny_config.eval_every_steps = 2, 0
  state = train_lib.train_and_evaluate(tiny_config, str(tmp_path))
  assert not isinstance(state, ema.EmaTrainState)  # the structure old checkpoints have
  saved = tmp_path / 'checkpoints' / '2' / 'config' / 'metadata'
  cfg = json.loads(saved.read_text())
  del cfg['ema_decay']
  saved.write_text(json.dumps(cfg))
  _, params, restored = scene_map.restore_params(str(tmp_path))
  assert restored.ema_decay == 0.0
  for got, want in zip(_leaves(params), _leaves(state.params)):
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize('decay', [1.0, -0.1])
def test_a_decay_outside_0_1_is_refused(tiny_config, decay):
  tiny_config.ema_decay = decay
  with pytest.raises(ConfigError, match='ema_decay'):
    train_state.create_train_state(tiny_config, jax.random.key(0, impl='rbg'))
