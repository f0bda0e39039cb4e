"""Orbax checkpoints of the (unreplicated) train state, with the config saved beside it.

The state carries no device axis, so a checkpoint restores on any device or
process count: restoration goes through an abstract target built with
`jax.eval_shape` and given the current replicated sharding.
"""
import logging
import os

import jax
import numpy as np
import orbax.checkpoint as ocp

from dpfcn_jax.errors import CheckpointError

log = logging.getLogger(__name__)


def manager(workdir, max_to_keep=None, create=True):
  """CheckpointManager over WORKDIR/checkpoints (orbax wants an absolute path)."""
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=create,
                                         enable_async_checkpointing=False)
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), 'checkpoints'),
                               options=options)


def save(mngr, state, config, metrics=None):
  step = int(jax.device_get(state.step))
  if step in mngr.all_steps():
    # Only a step restore() skipped as unreadable can lie at or after the resumed
    # one; orbax refuses to overwrite it, so the fresh save replaces it.
    log.warning('replacing unreadable checkpoint step %d in %s', step, mngr.directory)
    mngr.delete(step)
  items = dict(state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(config.to_dict()))
  if metrics is not None:  # orbax keeps its own `metrics` only for a best_fn; ours is explicit
    items['val'] = ocp.args.JsonSave(metrics)
  mngr.save(step, args=ocp.args.Composite(**items), force=True)
  mngr.wait_until_finished()
  return step


def best_score(workdir, key):
  """The val score stored with WORKDIR/best's checkpoint, or -inf if there is none.

  A resumed run starts from it, so a val after a restart only replaces `best`
  when it beats every val before the restart.
  """
  sub = os.path.join(workdir, 'best')
  if not os.path.isdir(sub):
    return -np.inf
  mngr = manager(sub, create=False)
  step = mngr.latest_step()
  if step is None:
    return -np.inf
  try:
    stored = mngr.restore(step, args=ocp.args.Composite(val=ocp.args.JsonRestore())).val
  except Exception:  # pylint: disable=broad-except
    return -np.inf  # a best checkpoint from before scores were stored, or a broken one
  return float(stored[key]) if key in stored else -np.inf


def abstract_like(state, sharding):
  dtype = lambda x: x.dtype if hasattr(x, 'dtype') else np.result_type(x)  # step may be an int
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), dtype(x), sharding=sharding),
                      state)


def restore(mngr, target_state, sharding, step=None):
  """Restores `step` (default: newest usable) into the structure of `target_state`.

  A step that fails to load (say a save killed half-way) is skipped, with a
  warning, in favour of the one before it.
  """
  steps = sorted(mngr.all_steps(), reverse=True) if step is None else [step]
  abstract = abstract_like(target_state, sharding)
  for s in steps:
    try:
      restored = mngr.restore(s, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))
      return restored.state
    except Exception as e:  # pylint: disable=broad-except
      if step is not None:
        raise CheckpointError(f'checkpoint step {s} in {mngr.directory} cannot be restored: '
                              f'{_reason(e)}') from e
      log.warning('checkpoint step %d in %s is unreadable (%s); trying an older one',
                      s, mngr.directory, _reason(e))
  return None


def _reason(error):
  # tensorstore appends its whole JSON spec, kilobytes that say nothing to a user.
  return str(error).split(' [tensorstore_spec')[0]


# Config fields added after checkpoints were first written, each with the value that
# reproduces what the code did before the field existed.
ADDED_FIELDS = {'model.input_norm': 'none', 'compute.dropout_bits': 32,
                'data.positive_fraction': 0.0, 'xla_flags': '', 'compute.winograd': False,
                'compute.winograd_wgrad': False, 'compute.fast_wgrad': True,
                'infer.connectivity': 4, 'infer.quicklook_side': 2048,
                'infer.progress_every_s': 10.0, 'ema_decay': 0.0, 'model.norm': 'none',
                'model.norm_groups': 4, 'model.fusion': 'concat'}
# Fields that moved: configs saved before config.compute carry the compute policy in
# config.model, where it did not describe the network.
MOVED_FIELDS = {f'model.{k}': f'compute.{k}'
                for k in ('fast_wgrad', 'dropout_bits', 'winograd', 'winograd_wgrad')}


def with_added_fields(config: dict) -> dict:
  """`config` (a saved config dict) with MOVED_FIELDS moved and every ADDED_FIELDS
  entry it lacks."""
  for old, new in MOVED_FIELDS.items():
    (section, leaf), (new_section, new_leaf) = old.split('.'), new.split('.')
    if leaf in config.get(section, {}):
      config.setdefault(new_section, {}).setdefault(new_leaf, config[section].pop(leaf))
  for key, value in ADDED_FIELDS.items():
    *parents, leaf = key.split('.')
    node = config
    for part in parents:
      node = node.setdefault(part, {})
    node.setdefault(leaf, value)
  return config


def saved_config(workdir, step=None):
  """The config dict saved beside a checkpoint (for eval/predict/Colab)."""
  mngr = manager(workdir, create=False)
  step = mngr.latest_step() if step is None else step
  if step is None:
    raise CheckpointError(f'{workdir}: no checkpoint found (train first, or pass the right '
                          '--workdir)')
  try:
    saved = mngr.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore())).config
  except Exception as e:  # pylint: disable=broad-except
    raise CheckpointError(f'checkpoint step {step} in {mngr.directory}: its config cannot be '
                          f'read: {_reason(e)}') from e
  return with_added_fields(saved), step
