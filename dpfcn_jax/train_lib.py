"""Training loop: pmapped step, deterministic data, orbax checkpoints, validation.

The step follows flax/examples/imagenet: one `jax.pmap` over all devices with the
state unreplicated (`in_axes=(None, 0, None)`), gradients summed over devices with
`lax.psum`, so checkpoints carry no device axis and restore on any device count.
"""
import collections
import concurrent.futures
import functools
import json
import logging
import os
import signal
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from dpfcn_jax import checkpoint, cli, ema, eval_lib, inference, metrics, scene_map, train_state
from dpfcn_jax.data import pipeline
from dpfcn_jax.errors import ConfigError, DpfcnError
from dpfcn_jax.models import compute, create_model

AXIS = train_state.AXIS  # pmap's axis name, the mesh axis the state is replicated over

log = logging.getLogger(__name__)


class NonFiniteLossError(DpfcnError):
  """The loss became NaN or Inf; training stops before any bad checkpoint is written."""


def pixel_loss(logits, label, valid, config):
  """Sum and weight of pixel-wise softmax cross-entropy, Eq. (4), over valid pixels.

  Returning the sum and its weight lets the step divide by the global weight, so
  the gradient is the same whatever the device count or per-device padding.
  """
  weights = valid * jnp.asarray(config.class_weights, jnp.float32)[label]
  ce = optax.softmax_cross_entropy(logits, jax.nn.one_hot(label, logits.shape[-1]))
  if config.loss == 'focal':
    p_true = jnp.exp(-ce)
    ce = ce * (1.0 - p_true) ** config.focal_gamma
  total = jnp.sum(ce * weights)
  if config.loss == 'ce+dice':
    # Soft Dice of the landslide class, scaled to the pixel count so it mixes with CE.
    p = jax.nn.softmax(logits)[..., 1] * valid
    y = (label == 1) * valid
    dice = 1.0 - (2 * jnp.sum(p * y) + 1.0) / (jnp.sum(p) + jnp.sum(y) + 1.0)
    total = total + dice * jnp.sum(weights)
  elif config.loss not in ('ce', 'focal'):
    raise ConfigError(f'unknown loss {config.loss!r}: expected ce, ce+dice or focal')
  return total, jnp.sum(weights)


def train_step(state, batch, rng, *, config):
  """One Adam step on the global batch; runs per device inside `jax.pmap`."""
  rng = jax.random.fold_in(jax.random.fold_in(rng, state.step), jax.lax.axis_index(AXIS))
  global_weight = jax.lax.psum(jnp.sum(batch['valid'] * jnp.asarray(
      config.class_weights, jnp.float32)[batch['label']]), AXIS)

  def loss_fn(params):
    logits = state.apply_fn({'params': params}, batch['pre'], batch['post'], train=True,
                            rngs={'dropout': rng})
    total, _ = pixel_loss(logits, batch['label'], batch['valid'], config)
    return total / global_weight, logits

  (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  grads = jax.lax.psum(grads, AXIS)
  pred = jnp.argmax(logits, -1) == 1
  y, v = batch['label'] == 1, batch['valid'] > 0
  counts = jnp.stack([jnp.sum(pred & y & v), jnp.sum(pred & ~y & v), jnp.sum(~pred & y & v)])
  step_metrics = {'loss': jax.lax.psum(loss, AXIS), 'tp_fp_fn': jax.lax.psum(counts, AXIS),
                  'grad_norm': optax.tree.norm(grads)}
  return state.apply_gradients(grads=grads), step_metrics


def make_p_train_step(config, devices=None):
  """The pmapped step. With several processes pmap hands its outputs back
  process-local; the state is re-wrapped (no copy) as one global replicated array,
  which orbax saves collectively and the next step takes as it is."""
  p_step = jax.pmap(functools.partial(train_step, config=config), axis_name=AXIS,
                    in_axes=(None, 0, None), out_axes=(None, None), donate_argnums=(0,),
                    devices=devices)
  if jax.process_count() == 1:
    return p_step
  mesh = train_state.replicated_sharding(devices).mesh

  def global_step(state, batch, rng):
    state, step_metrics = p_step(state, batch, rng)
    state = multihost_utils.host_local_array_to_global_array(state, mesh, PartitionSpec())
    return state, step_metrics

  return global_step


def shard(batch):
  """(local_batch, ...) -> (local_devices, local_batch / local_devices, ...)."""
  n = jax.local_device_count()
  return jax.tree.map(lambda x: x.reshape((n, -1) + x.shape[1:]), batch)


def device_batch(sampler, config, step):
  """This process's slice of the global batch of `step`, split over and put on the
  local devices the way pmap reads it, so pmap starts without a host transfer."""
  batch = shard(sampler.batch(step, config.batch_size, jax.process_index(),
                              jax.process_count()))
  mesh = Mesh(np.asarray(jax.local_devices()), (AXIS,))
  return jax.device_put(batch, NamedSharding(mesh, PartitionSpec(AXIS)))


def prefetch(make, steps, workers=1, depth=1):
  """Yields (s, make(s)) for s in `steps`, in order, while `workers` threads build up
  to `depth` items ahead of the one the caller runs; items stay pure functions of s."""
  pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
  pending = collections.deque()
  try:
    for s in steps:
      pending.append((s, pool.submit(make, s)))
      if len(pending) > depth:
        s, future = pending.popleft()
        yield s, future.result()
    while pending:
      s, future = pending.popleft()
      yield s, future.result()
  finally:  # a caller that stops early does not wait for batches it will not use
    pool.shutdown(cancel_futures=True)


def batches(sampler, config, start):
  """Device batches of steps start, start + 1, ... num_train_steps - 1, as prefetched."""
  return prefetch(functools.partial(device_batch, sampler, config),
                  range(start, config.num_train_steps), config.data.loader_workers,
                  config.data.prefetch_batches)


class JsonlWriter:
  """Appends one JSON object per line to WORKDIR/metrics.jsonl (process 0 only)."""

  def __init__(self, workdir):
    self.path = os.path.join(workdir, 'metrics.jsonl') if jax.process_index() == 0 else None

  def write(self, step, **values):
    if self.path:
      with open(self.path, 'a') as f:
        f.write(json.dumps({'step': int(step), **values}) + '\n')


def check_config(config):
  """Contradictions that would otherwise surface as shape errors deep inside XLA."""
  multiple = 2**config.model.depth
  if config.data.tile % multiple:
    raise ConfigError(f'data.tile {config.data.tile} is not a multiple of 2**model.depth '
                      f'= {multiple}')
  scene_map.infer_settings(config)
  if config.batch_size <= 0 or config.batch_size % jax.device_count():
    raise ConfigError(f'batch_size {config.batch_size} is not a positive multiple of '
                      f'{jax.device_count()} devices')
  if min(config.data.loader_workers, config.data.prefetch_batches) < 1:
    raise ConfigError('data.loader_workers and data.prefetch_batches must be >= 1')
  if config.num_train_steps < 0:
    raise ConfigError(f'num_train_steps {config.num_train_steps} is negative')


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str):
  """Trains (resuming from WORKDIR's newest checkpoint), validating as configured.

  Returns the final train state. SIGTERM saves a checkpoint and returns cleanly.
  """
  check_config(config)
  train_sites = pipeline.load_split(config.data, 'train')
  val_sites = pipeline.load_split(config.data, 'val') if config.eval_every_steps > 0 else []
  sampler = pipeline.sampler(train_sites, config)
  os.makedirs(workdir, exist_ok=True)  # only once the inputs are known good

  model = create_model(config.model, compute.resolve(config.compute))  # once, for this host
  init_rng, dropout_rng = jax.random.split(jax.random.key(config.seed, impl=config.prng_impl))
  state = train_state.create_train_state(config, init_rng, model)
  sharding = train_state.replicated_sharding()
  mngr = checkpoint.manager(workdir, config.keep_checkpoints)
  restored = checkpoint.restore(mngr, state, sharding) if mngr.latest_step() is not None else None
  state = restored if restored is not None else jax.device_put(state, sharding)
  # On this process's devices, where pmap reads it: else it is copied there every step.
  dropout_rng = jax.device_put(dropout_rng, train_state.replicated_sharding(jax.local_devices()))
  start = int(jax.device_get(state.step))
  if start:
    log.info('resumed from step %d in %s', start, workdir)
  if jax.process_index() == 0:
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      f.write(config.to_json_best_effort(indent=2))

  p_train_step = make_p_train_step(config)
  mapper = scene_map.SceneMapper.from_params(model, None, config, scene_map.SCORING)
  writer = JsonlWriter(workdir)
  stop = {'signal': None}
  previous = signal.signal(signal.SIGTERM, lambda sig, _: stop.update(signal=sig))
  best = checkpoint.best_score(workdir, config.select_best) if config.select_best else 0.0
  try:
    t0, last_step, last_loss, in_flight = time.time(), start, None, None
    for step, batch in batches(sampler, config, start):
      state, step_metrics = p_train_step(state, batch, dropout_rng)
      # Async dispatch would let this loop run up to a log step ahead of the device, and a
      # SIGTERM's save would wait for every queued step; two in flight keep the device busy.
      jax.block_until_ready(in_flight)
      in_flight = step_metrics
      if step == start:  # the step has compiled: the compiler's freed memory goes back
        cli.release_heap()
      done = step + 1
      if done % config.log_every_steps == 0 or done == config.num_train_steps:
        m = jax.device_get(step_metrics)
        last_loss = float(m['loss'])
        _check_finite(m, done)
        rate = (done - last_step) / max(time.time() - t0, 1e-9)
        eta = (config.num_train_steps - done) / max(rate, 1e-9)
        tp, fp, fn = (int(x) for x in m['tp_fp_fn'])
        train_qa = metrics.scores(tp, fp, fn, 0)['qa']
        log.info('step %d/%d loss %.4f train_qa %.3f | %.2f steps/s, ETA %s', done,
                     config.num_train_steps, last_loss, train_qa, rate, _hms(eta))
        writer.write(done, loss=last_loss, train_qa=train_qa, steps_per_s=rate,
                     grad_norm=float(m['grad_norm']))
        t0, last_step = time.time(), done
      if val_sites and (done % config.eval_every_steps == 0 or done == config.num_train_steps):
        report = eval_lib.evaluate_sites(
            mapper.with_params(inference.local_copy(ema.eval_params(state))), val_sites)
        pooled = report['pooled']
        log.info('step %d val: %s', done, ' '.join(
            f'{k} {pooled[k]:.4f}' for k in ('cp', 'cr', 'qa', 'oa', 'aa', 'f1')))
        # Each site's counts, so cross-validation can pool the folds' held-out sites.
        writer.write(done, **{f'val_{k}': pooled[k] for k in metrics.KEYS},
                     val_counts={name: {c: r[c] for c in metrics.COUNTS}
                                 for name, r in report['sites'].items()})
        if config.select_best and pooled[config.select_best] > best:
          best = pooled[config.select_best]
          _check_finite(step_metrics, done)
          checkpoint.save(checkpoint.manager(os.path.join(workdir, 'best'), 1), state, config,
                          {config.select_best: best})
      if done % config.checkpoint_every_steps == 0 or done == config.num_train_steps \
          or stop['signal'] is not None:
        _check_finite(step_metrics, done)
        checkpoint.save(mngr, state, config)
      if stop['signal'] is not None:
        log.warning('signal %d: checkpoint saved at step %d, stopping', stop['signal'], done)
        break
  finally:
    signal.signal(signal.SIGTERM, previous)
    mngr.close()
  return state


def _check_finite(step_metrics, step):
  """Stops before a save when the step's loss or gradient is NaN/Inf.

  The loss is that of the parameters before the update, so a finite loss with a
  non-finite gradient would still save NaN parameters: both are checked.
  """
  for name in ('loss', 'grad_norm'):
    value = float(jax.device_get(step_metrics[name]))
    if not np.isfinite(value):
      raise NonFiniteLossError(f'{name} is {value} at step {step}: stopping; the last good '
                               'checkpoint is kept (lower learning_rate or check the inputs)')


def _hms(seconds):
  seconds = int(seconds)
  return f'{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}'
