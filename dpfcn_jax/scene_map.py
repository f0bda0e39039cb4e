"""Checkpoint -> network -> scene map: the one way every command maps a scene.

Train's validation, eval, compare, predict and the scene benchmark build a
`SceneMapper`, from a checkpoint (`SceneMapper.restore`) or from live parameters,
with its inference settings resolved and checked once (`infer_settings`), and ask
it for the blended landslide probability of a scene held in memory or streamed by
rows, and for the LIM it implies.
"""
import dataclasses
import logging
import os
from typing import Any

import jax
import ml_collections

from dpfcn_jax import checkpoint, ema, inference, inventory, train_state
from dpfcn_jax.errors import CheckpointError, ConfigError
from dpfcn_jax.models import compute, create_model

THRESHOLD = 0.5  # argmax of two softmax classes, Eq. (3)

log = logging.getLogger(__name__)


def infer_settings(config, overrides=None) -> ml_collections.ConfigDict:
  """`config.infer`, then `overrides`; ConfigError if the settings cannot map a scene with
  `config.model`. Fields older checkpoints lack come from checkpoint.ADDED_FIELDS."""
  cfg = config.infer.to_dict()
  cfg.update(overrides or {})
  multiple = 2 ** config.model.depth
  if cfg['tile'] <= 0 or cfg['tile'] % multiple:
    raise ConfigError(f'infer.tile {cfg["tile"]} must be a positive multiple of 2**model.depth '
                      f'= {multiple}')
  if not 0 < cfg['stride'] <= cfg['tile']:
    raise ConfigError(f'infer.stride {cfg["stride"]} must be in 1..infer.tile ({cfg["tile"]})')
  if min(cfg['batch_size'], cfg['quicklook_side']) < 1 or cfg['mc_samples'] < 0:
    raise ConfigError('infer.batch_size and infer.quicklook_side must be >= 1, '
                      'infer.mc_samples >= 0')
  if cfg['connectivity'] not in inventory.CONNECTIVITIES:
    raise ConfigError(f'infer.connectivity must be 4 or 8, got {cfg["connectivity"]}')
  return ml_collections.ConfigDict(cfg)


# Validation, eval and compare score one deterministic map: no MC-dropout passes.
SCORING = {'mc_samples': 0}


def which_checkpoint(config, workdir) -> str:
  """'best' where the run kept a best-on-val checkpoint and the config asks for it."""
  best = config.select_best and os.path.isdir(os.path.join(workdir, 'best'))
  return 'best' if best else 'latest'


def restore_params(workdir, step=None, which='latest'):
  """(model, params, saved config) of WORKDIR's checkpoint, on the local device(s);
  the parameters' EMA where the run kept one.

  The architecture comes from the config saved beside the checkpoint, so eval
  and predict cannot silently build a different network. Without `step`, an
  unreadable newest checkpoint (a save killed half-way) gives way to the one before.
  """
  sub = os.path.join(workdir, 'best') if which == 'best' else workdir
  mngr = checkpoint.manager(sub, create=False)
  steps = [step] if step is not None else sorted(mngr.all_steps(), reverse=True)
  if not steps:
    checkpoint.saved_config(sub)  # raises the "no checkpoint found" error
  for s in steps:
    try:
      saved, _ = checkpoint.saved_config(sub, s)
      saved = ml_collections.ConfigDict(saved)
      model = create_model(saved.model, compute.resolve(saved.compute))
      target = jax.eval_shape(lambda: train_state.create_train_state(
          saved, jax.random.key(0, impl=saved.prng_impl), model))  # pylint: disable=cell-var-from-loop
      state = checkpoint.restore(mngr, target, train_state.replicated_sharding(), s)
    except CheckpointError as e:
      if step is not None:
        raise
      log.warning('%s; trying an older checkpoint', e)
      continue
    log.info('restored step %d from %s', s, sub)
    return model, inference.local_copy(ema.eval_params(state)), saved
  raise CheckpointError(f'{sub}: no readable checkpoint')


@dataclasses.dataclass(frozen=True)
class SceneMapper:
  """A network with its parameters and inference settings, ready to map scenes."""
  model: Any
  params: Any
  config: ml_collections.ConfigDict  # of the run that trained the network
  infer: ml_collections.ConfigDict   # resolved by infer_settings
  fn: Any = None                     # the pmapped window function; built if not given

  def __post_init__(self):
    if self.fn is None:
      object.__setattr__(self, 'fn', inference.make_infer_fn(self.model, self.infer.tta,
                                                             self.infer.mc_samples))

  @classmethod
  def from_params(cls, model, params, config, overrides=None):
    return cls(model, params, config, infer_settings(config, overrides))

  @classmethod
  def restore(cls, workdir, step=None, which='latest', overrides=None):
    model, params, saved = restore_params(workdir, step, which)
    return cls.from_params(model, params, saved, overrides)

  def with_params(self, params):
    """The same mapper (no recompilation) over other parameters of the same network."""
    return dataclasses.replace(self, params=params)

  def default_rng(self):
    return jax.random.key(self.config.seed, impl=self.config.prng_impl)

  def stream(self, read_rows, height, width, rng=None, progress=None):
    """Yields (row0, probability, std) bands top to bottom (inference.stream_probability)."""
    i = self.infer
    return inference.stream_probability(self.fn, self.params, read_rows, height, width, i.tile,
                                        i.stride, i.batch_size,
                                        self.default_rng() if rng is None else rng, progress)

  def probability(self, pre, post, rng=None):
    """Blended probability (H, W) and MC-dropout std (H, W) of an in-memory scene."""
    i = self.infer
    return inference.scene_probability(self.fn, self.params, pre, post, i.tile, i.stride,
                                       i.batch_size, self.default_rng() if rng is None else rng)

  @staticmethod
  def lim(prob):
    """The landslide inventory map of a probability map, Eq. (3)."""
    return prob > THRESHOLD

