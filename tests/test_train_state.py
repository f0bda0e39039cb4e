"""The train state: optimizer choices, a strongly typed step, the replicated sharding."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dpfcn_jax import train_state
from dpfcn_jax.errors import ConfigError


def test_state_starts_at_an_int32_step_with_adam_over_every_parameter(tiny_config):
  state = train_state.create_train_state(tiny_config, jax.random.key(0, impl='rbg'))
  assert state.step.dtype == jnp.int32 and not state.step.weak_type
  adam = state.opt_state[0]
  assert jax.tree.structure(adam.mu) == jax.tree.structure(state.params)
  assert all(np.all(np.asarray(m) == 0) for m in jax.tree.leaves(adam.mu))


def test_cosine_schedule_warms_up_then_decays(tiny_config):
  tiny_config.lr_schedule, tiny_config.warmup_steps, tiny_config.num_train_steps = 'cosine', 2, 4
  tiny_config.grad_clip_norm = 1.0
  tx = train_state.make_optimizer(tiny_config)
  assert isinstance(tx, optax.GradientTransformation)
  params = {'w': jnp.ones(3)}
  opt, moved = tx.init(params), []
  for _ in range(4):
    update, opt = tx.update({'w': jnp.ones(3)}, opt, params)
    moved.append(float(-update['w'][0]))
  assert moved[0] == 0 and moved[1] > 0 and moved[2] > moved[3]


@pytest.mark.parametrize('field,value,match', [
    ('optimizer', 'sgd', "unknown optimizer 'sgd'"),
    ('lr_schedule', 'step', "unknown lr_schedule 'step'"),
])
def test_unknown_optimizer_settings_are_config_errors(tiny_config, field, value, match):
  setattr(tiny_config, field, value)
  with pytest.raises(ConfigError, match=match):
    train_state.make_optimizer(tiny_config)


def test_replicated_sharding_spans_the_devices_in_process_order():
  sharding = train_state.replicated_sharding()
  assert list(sharding.mesh.devices) == jax.devices()
  assert sharding.mesh.axis_names == (train_state.AXIS,) and sharding.is_fully_replicated
  assert list(train_state.replicated_sharding(jax.devices()[:1]).mesh.devices) == jax.devices()[:1]
