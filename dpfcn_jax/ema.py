"""An exponential moving average of the parameters, kept in the train state.

Off by default (config.ema_decay = 0): the paper takes the last iterate. With it on,
validation, checkpoints' restores, eval and predict use the average, which smooths the
checkpoint-to-checkpoint swings of a small-data run.
"""
import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from flax.training import train_state as flax_train_state

from dpfcn_jax.errors import ConfigError


class EmaTrainState(flax_train_state.TrainState):
  """flax's TrainState plus `ema_params`, updated with every step.

  Its own class, not an optional field: a state without EMA keeps exactly the
  structure of checkpoints written before EMA existed, so they still restore.
  """
  ema_params: Any
  ema_decay: float = struct.field(pytree_node=False, default=0.0)

  def apply_gradients(self, *, grads, **kwargs):
    new = super().apply_gradients(grads=grads, **kwargs)
    w = weight(self.ema_decay, new.step)
    ema = jax.tree.map(lambda e, p: e + w * (p - e), self.ema_params, new.params)
    return new.replace(ema_params=ema)


def weight(decay, step):
  """The weight of step `step`'s parameters: (1 - d) / (1 - d^t), the debiased EMA.

  Debiased, step 1 takes weight 1, so the average starts at the first trained
  parameters rather than dragging the random initialisation along for ~1/(1-d) steps.
  """
  t = jnp.asarray(step, jnp.float32)
  return (1.0 - decay) / -jnp.expm1(t * math.log(decay))


def check_decay(decay):
  if not 0.0 <= decay < 1.0:
    raise ConfigError(f'ema_decay {decay}: expected 0 (off) or a value in (0, 1)')


def eval_params(state):
  """The parameters a run is validated, evaluated and deployed with: the EMA if kept."""
  return state.ema_params if isinstance(state, EmaTrainState) else state.params
