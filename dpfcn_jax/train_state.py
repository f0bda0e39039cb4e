"""The train state: Adam (Section II-C) over freshly initialised parameters, and
where it lives on the devices.

Training creates it; eval, predict and compare build its shape to restore a
checkpoint into, so both sides share this module instead of importing each other.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state as flax_train_state
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from dpfcn_jax import ema
from dpfcn_jax.errors import ConfigError
from dpfcn_jax.models import compute, create_model

AXIS = 'batch'  # the device axis: pmap's in train_lib, the mesh's here


def make_optimizer(config):
  if config.optimizer != 'adam':
    raise ConfigError(f'unknown optimizer {config.optimizer!r}: expected adam')
  if config.lr_schedule == 'constant':
    lr = config.learning_rate
  elif config.lr_schedule == 'cosine':
    lr = optax.warmup_cosine_decay_schedule(0.0, config.learning_rate, config.warmup_steps,
                                            max(config.num_train_steps, config.warmup_steps + 1))
  else:
    raise ConfigError(f'unknown lr_schedule {config.lr_schedule!r}: expected constant or cosine')
  tx = optax.adam(lr)
  if config.grad_clip_norm > 0:
    tx = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), tx)
  return tx


def create_train_state(config, rng, model=None):
  """Initialises parameters (Xavier, Section II-C), the Adam state and, with
  config.ema_decay > 0, the parameters' EMA."""
  model = create_model(config.model, compute.resolve(config.compute)) if model is None else model
  x = jnp.zeros((1, config.data.tile, config.data.tile, config.data.bands), jnp.float32)
  params = jax.jit(lambda r: model.init({'params': r}, x, x, train=False)['params'])(rng)
  ema.check_decay(config.ema_decay)
  if config.ema_decay > 0:
    state = ema.EmaTrainState.create(apply_fn=model.apply, params=params,
                                     tx=make_optimizer(config), ema_decay=config.ema_decay,
                                     ema_params=jax.tree.map(jnp.copy, params))  # no shared buffer
  else:
    state = flax_train_state.TrainState.create(apply_fn=model.apply, params=params,
                                               tx=make_optimizer(config))
  # A weakly typed step 0 would compile the step again once it is an int32 (on
  # resume, or after pmap's first multi-process round trip).
  return state.replace(step=jnp.zeros((), jnp.int32))


def replicated_sharding(devices=None):
  """Where pmap keeps its unreplicated (in_axes=None) state: feeding it there avoids a
  second compilation on the second step. pmap orders the devices process by process."""
  if devices is None:
    devices = [d for p in range(jax.process_count()) for d in jax.local_devices(p)]
  return NamedSharding(Mesh(np.asarray(devices), (AXIS,)), PartitionSpec())
