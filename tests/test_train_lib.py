"""The pmapped step, checkpoint resume, and learning on a tiny synthetic run."""
import json
import logging
import threading
import time

import jax
import numpy as np
import pytest

from dpfcn_jax import checkpoint, eval_lib, scene_map, train_lib, train_state
from dpfcn_jax.data import pipeline
from dpfcn_jax.models import create_model


def _sampler(config):
  return pipeline.BlockSampler(pipeline.load_split(config.data, 'train'), config.data.tile,
                               config.seed)


def _batch(config):
  return _sampler(config).batch(0, config.batch_size)


def _params_allclose(a, b, **tol):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), **tol)


def test_two_device_pmap_step_equals_one_device_step(tiny_config):
  tiny_config.model.keep_prob = 1.0  # dropout masks depend on the device split
  assert jax.device_count() == 2
  batch = _batch(tiny_config)
  host_state = jax.device_get(train_state.create_train_state(tiny_config, jax.random.key(0, impl='rbg')))
  rng = jax.random.key(1, impl='rbg')
  results = []
  for devices in (jax.devices()[:1], jax.devices()):
    step = train_lib.make_p_train_step(tiny_config, devices)
    state = jax.device_put(host_state, train_state.replicated_sharding(devices))
    b = jax.tree.map(lambda x: x.reshape((len(devices), -1) + x.shape[1:]), batch)
    for _ in range(2):
      state, m = step(state, b, rng)
    results.append((jax.device_get(state.params), float(m['loss'])))
  _params_allclose(results[0][0], results[1][0], rtol=1e-4, atol=1e-6)
  assert results[0][1] == pytest.approx(results[1][1], rel=1e-5)


def test_state_has_no_device_axis(tiny_config):
  state = train_state.create_train_state(tiny_config, jax.random.key(0, impl='rbg'))
  step = train_lib.make_p_train_step(tiny_config)
  state = jax.device_put(jax.device_get(state), train_state.replicated_sharding())
  before = jax.tree.map(np.shape, jax.device_get(state.params))
  state, _ = step(state, train_lib.shard(_batch(tiny_config)), jax.random.key(0, impl='rbg'))
  assert jax.tree.map(np.shape, jax.device_get(state.params)) == before
  assert int(state.step) == 1


def test_steps_move_nothing_between_host_and_devices_and_compile_once(tiny_config, caplog):
  # big_vision's check: inside the step nothing crosses host <-> devices implicitly
  # (batches and the key are put there first, as train_and_evaluate does); steps 2-3
  # reuse step 1's compilation (static shapes, the state fed where pmap keeps it).
  sampler = _sampler(tiny_config)
  batches = [train_lib.device_batch(sampler, tiny_config, i) for i in range(3)]
  keys = [jax.device_put(jax.random.fold_in(jax.random.key(0, impl='rbg'), i),
                         train_state.replicated_sharding()) for i in range(3)]
  state = train_state.create_train_state(tiny_config, jax.random.key(0, impl='rbg'))
  state = jax.device_put(jax.device_get(state), train_state.replicated_sharding())
  step = train_lib.make_p_train_step(tiny_config)
  with jax.transfer_guard('disallow'), jax.log_compiles(True), caplog.at_level(logging.WARNING):
    for batch, key in zip(batches, keys):
      state, m = step(state, batch, key)
  assert len([r for r in caplog.records if r.getMessage().startswith('Compiling')]) == 1
  assert int(state.step) == 3 and np.isfinite(float(m['loss']))
  with jax.transfer_guard('disallow'), pytest.raises(Exception, match='transfer'):
    step(state, train_lib.shard(sampler.batch(3, tiny_config.batch_size)), keys[0])  # a host batch


def test_resume_from_checkpoint_equals_uninterrupted_run(tiny_config, tmp_path):
  tiny_config.eval_every_steps = 0
  straight = train_lib.train_and_evaluate(tiny_config, str(tmp_path / 'a'))
  tiny_config.num_train_steps = 2
  train_lib.train_and_evaluate(tiny_config, str(tmp_path / 'b'))
  tiny_config.num_train_steps = 4
  resumed = train_lib.train_and_evaluate(tiny_config, str(tmp_path / 'b'))
  assert int(resumed.step) == 4
  _params_allclose(jax.device_get(straight.params), jax.device_get(resumed.params),
                   rtol=0, atol=0)
  assert checkpoint.manager(str(tmp_path / 'b')).all_steps() == [2, 4]


def test_training_lowers_loss_and_raises_quality(tiny_config, tmp_path):
  c = tiny_config
  # Landslides span tens of pixels: 64 px blocks of 192-256 px scenes hold whole ones.
  c.model.width, c.model.depth, c.data.tile, c.infer.stride = 8, 3, 64, 48
  c.data.synthetic.min_side, c.data.synthetic.max_side = 192, 256
  c.model.keep_prob, c.learning_rate, c.class_weights = 1.0, 3e-3, (1.0, 3.0)
  # The synthetic config's warm-up alone lasts 50 steps; at a constant rate 50 steps learn.
  c.lr_schedule = 'constant'
  c.num_train_steps, c.log_every_steps, c.eval_every_steps = 50, 10, 50
  c.checkpoint_every_steps = 50
  c.data.synthetic.num_scenes.train = 4
  model = create_model(c.model)
  val = pipeline.load_split(c.data, 'val')
  init = train_state.create_train_state(c, jax.random.key(c.seed, impl='rbg'), model)
  before = eval_lib.evaluate_sites(
      scene_map.SceneMapper.from_params(model, init.params, c), val)['pooled']['qa']
  train_lib.train_and_evaluate(c, str(tmp_path))
  log = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  losses = [r['loss'] for r in log if 'loss' in r]
  after = [r['val_qa'] for r in log if 'val_qa' in r][-1]
  # An untrained two-class softmax starts near ln 2; per-batch losses are noisy.
  assert np.mean(losses[-3:]) < 0.5 * np.log(2)
  assert after > before + 0.1
  assert all(r['steps_per_s'] > 0 for r in log if 'loss' in r)


@pytest.mark.parametrize('key,value,match', [
    ('data.tile', 30, 'not a multiple of 2'),
    ('infer.stride', 0, 'infer.stride'),
    ('batch_size', 3, 'multiple of 2 devices'),
    ('data.loader_workers', 0, 'loader_workers'),
])
def test_contradictory_config_is_rejected(tiny_config, key, value, match):
  section, _, field = key.rpartition('.')
  setattr(tiny_config[section] if section else tiny_config, field, value)
  with pytest.raises(train_lib.ConfigError, match=match):
    train_lib.check_config(tiny_config)


def test_a_non_finite_gradient_stops_before_its_checkpoint(tiny_config, tmp_path, monkeypatch):
  # A finite loss with a NaN gradient: the update is NaN, so nothing may be saved from it.
  make_step = train_lib.make_p_train_step

  def poisoned(config, devices=None):
    step = make_step(config, devices)

    def run(state, batch, rng):
      new, m = step(state, batch, rng)
      if int(jax.device_get(new.step)) == 2:
        new = new.replace(params=jax.tree.map(lambda p: p * np.nan, new.params))
        m = {**m, 'grad_norm': m['grad_norm'] * np.nan}
      return new, m
    return run

  monkeypatch.setattr(train_lib, 'make_p_train_step', poisoned)
  tiny_config.num_train_steps, tiny_config.checkpoint_every_steps = 3, 1
  tiny_config.log_every_steps, tiny_config.eval_every_steps = 100, 0
  with pytest.raises(train_lib.NonFiniteLossError, match='grad_norm is nan at step 2'):
    train_lib.train_and_evaluate(tiny_config, str(tmp_path))
  assert checkpoint.manager(str(tmp_path), create=False).all_steps() == [1]


@pytest.mark.parametrize('workers,depth', [(1, 1), (3, 5)])
def test_prefetch_yields_in_step_order_and_builds_at_most_depth_ahead(workers, depth):
  started, lock = [], threading.Lock()
  def make(s):
    with lock:
      started.append(s)
    time.sleep(0.001 * (s % 3))  # later items may finish first
    return s * s
  for s, item in train_lib.prefetch(make, range(20), workers, depth):
    assert item == s * s
    with lock:
      assert max(started) <= s + depth
  assert sorted(started) == list(range(20))


def test_prefetch_stops_building_when_the_caller_stops():
  started = []
  stream = train_lib.prefetch(lambda s: started.append(s) or time.sleep(0.05), range(100), 2, 8)
  next(stream)
  stream.close()
  count = len(started)
  time.sleep(0.2)
  assert len(started) == count <= 1 + 8


def test_prefetched_device_batches_equal_the_sampler_s(tiny_config):
  tiny_config.data.loader_workers, tiny_config.data.prefetch_batches = 3, 4
  sampler = _sampler(tiny_config)
  got = list(train_lib.batches(sampler, tiny_config, 1))
  assert [s for s, _ in got] == list(range(1, tiny_config.num_train_steps))
  for s, batch in got:
    expected = train_lib.shard(sampler.batch(s, tiny_config.batch_size))
    for key in expected:
      np.testing.assert_array_equal(np.asarray(batch[key]), expected[key])
