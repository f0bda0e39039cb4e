"""Scale-out: joining a multi-process job, training across processes and device
counts, bf16 mixed precision, and batches prefetched to the devices."""
import json
import os
import socket
import subprocess
import sys
import threading
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO, load_config
from dpfcn_jax import distributed, eval_lib, train_lib, train_state
from dpfcn_jax.data import pipeline
from dpfcn_jax.errors import ConfigError
from dpfcn_jax.models import create_model

# The tiny synthetic run of the subprocess tests. keep_prob=1: dropout masks depend on
# the device a sample lands on, so only dropout-free runs can match across layouts.
TINY = ['--config=configs/synthetic.py', '--config.model.width=4', '--config.model.depth=1',
        '--config.model.keep_prob=1.0', '--config.data.tile=32', '--config.infer.stride=24',
        '--config.batch_size=4', '--config.data.synthetic.min_side=96',
        '--config.data.synthetic.max_side=128', '--config.data.synthetic.num_scenes.train=2',
        '--config.log_every_steps=1', '--config.eval_every_steps=0',
        '--config.checkpoint_every_steps=2', '--config.distributed.initialization_timeout=120']
# The gradient halves are summed over gloo in one case and inside one process in the
# other, which may round differently (the runs here match exactly); Adam's scaling
# could magnify a last-bit difference on near-zero gradients.
TOLERANCE = dict(rtol=1e-5, atol=1e-6)

# `python -m dpfcn_jax.train ARGS` that also saves this process's final parameters.
_TRAIN_AND_SAVE = '''
import sys
import jax, numpy as np
from absl import app
from dpfcn_jax import train, train_lib
out, sys.argv = sys.argv[1], sys.argv[:1] + sys.argv[2:]
run = train_lib.train_and_evaluate
def train_and_save(config, workdir):
  state = run(config, workdir)
  leaves = jax.tree_util.tree_flatten_with_path(state.params)[0]
  np.savez(out, **{jax.tree_util.keystr(k): np.asarray(x.addressable_data(0)) for k, x in leaves})
  return state
train_lib.train_and_evaluate = train_and_save
app.run(train.main)
'''


def _free_port():
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _start(out, workdir, devices, *flags):
  """Starts the run that saves its parameters to OUT.npz; its output goes to OUT.log."""
  env = {k: v for k, v in os.environ.items() if not k.startswith('SLURM_')}
  env.update(JAX_PLATFORMS='cpu', JAX_NUM_CPU_DEVICES=str(devices),
             JAX_DISABLE_MOST_OPTIMIZATIONS='1')  # compile in seconds; same math
  log = out.with_suffix('.log')
  with open(log, 'w') as f:
    proc = subprocess.Popen([sys.executable, '-c', _TRAIN_AND_SAVE, str(out),
                             f'--workdir={workdir}', *TINY, *flags],
                            cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT)
  return proc, log


def _finish(started):
  """Waits for all and returns their logs; a failure stops the others, which would
  otherwise wait for their peer."""
  try:
    for proc, log in started:
      proc.wait(timeout=300)
      assert proc.returncode == 0, log.read_text()[-3000:]
  finally:
    for proc, _ in started:
      if proc.poll() is None:
        proc.kill()
        proc.wait()
  return [log.read_text() for _, log in started]


def _params(path):
  with np.load(path) as f:
    return dict(f)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """3 steps as 2 processes x 1 device and as 1 process x 2 devices; 2 steps on 4
  devices resumed for a 3rd on 1. All start together: 4 processes on few cores; the
  resumed run starts once the run on 4 devices is done, while the others still run."""
  tmp = tmp_path_factory.mktemp('scale_out')
  port = _free_port()
  steps = '--config.num_train_steps=3'
  rest = [_start(tmp / f'pair{i}.npz', tmp / 'pair', 1, steps,
                 f'--coordinator_address=localhost:{port}', '--num_processes=2',
                 f'--process_id={i}') for i in range(2)]
  rest.append(_start(tmp / 'single.npz', tmp / 'single', 2, steps))
  try:
    four = _finish([_start(tmp / 'four.npz', tmp / 'moved', 4, '--config.num_train_steps=2')])
    rest.append(_start(tmp / 'moved.npz', tmp / 'moved', 1, steps))
  except BaseException:
    for proc, _ in rest:
      proc.kill()
      proc.wait()
    raise
  logs = _finish(rest)
  return tmp, logs[:3] + four + logs[3:]


@pytest.mark.parametrize('flags, env, expected', [
    ((None, None, None), {}, None),
    (('10.0.0.1:1234', 4, 3), {}, dict(coordinator_address='10.0.0.1:1234', num_processes=4,
                                       process_id=3)),
    ((None, None, None), {v: '0' for v in distributed.SLURM_STEP_VARS}, {}),
    ((None, None, None), {'SLURM_JOB_ID': '5'}, None),  # a batch script, not an srun step
])
def test_init_args_pick_explicit_slurm_or_none(flags, env, expected):
  config = load_config().distributed
  config.initialization_timeout = 9
  args = distributed.init_args(config, *flags, environ=env)
  if expected is None:
    assert args is None
  else:
    assert args == dict(expected, initialization_timeout=9)
  config.enabled = True
  assert distributed.init_args(config, *flags, environ=env) is not None


@pytest.mark.parametrize('flags', [('h:1', None, 0), ('h:1', 2, 2), (None, 2, 0)])
def test_incomplete_or_inconsistent_flags_are_config_errors(flags):
  config = load_config().distributed
  config.initialization_timeout = 9
  with pytest.raises(ConfigError):
    distributed.init_args(config, *flags, environ={})


def test_lone_process_initialises_nothing(monkeypatch):
  for v in distributed.SLURM_STEP_VARS:
    monkeypatch.delenv(v, raising=False)
  config = load_config().distributed
  config.initialization_timeout = 9
  assert distributed.initialize(config) == (0, 1)
  assert not jax.distributed.is_initialized()


def test_two_processes_train_like_one_process_on_two_devices(runs):
  tmp, logs = runs
  p0, p1, single = (_params(tmp / f) for f in ('pair0.npz', 'pair1.npz', 'single.npz'))
  assert p0.keys() == single.keys() and len(p0) > 4
  for k in p0:
    np.testing.assert_array_equal(p0[k], p1[k])  # one replicated state, not two
    np.testing.assert_allclose(p0[k], single[k], **TOLERANCE)
  # Process 0 alone writes the metrics; the checkpoint is written once, together.
  log = [json.loads(l) for l in (tmp / 'pair' / 'metrics.jsonl').read_text().splitlines()]
  assert [r['step'] for r in log] == [1, 2, 3]
  assert sorted(os.listdir(tmp / 'pair' / 'checkpoints')) == ['2', '3']
  assert not any('donat' in err.lower() for err in logs)


def test_checkpoint_of_four_devices_resumes_on_one(runs):
  tmp, logs = runs
  assert 'resumed from step 2' in logs[-1]
  moved, single = _params(tmp / 'moved.npz'), _params(tmp / 'single.npz')
  for k in single:
    np.testing.assert_allclose(moved[k], single[k], **TOLERANCE)
  log = [json.loads(l) for l in (tmp / 'moved' / 'metrics.jsonl').read_text().splitlines()]
  assert [r['step'] for r in log] == [1, 2, 3]


def test_bf16_computes_in_bf16_keeps_f32_state_and_learns(tiny_config, tmp_path):
  c = tiny_config
  c.model.dtype, c.model.depth = 'bfloat16', 1
  c.learning_rate = 3e-3
  c.num_train_steps, c.log_every_steps, c.eval_every_steps = 40, 1, 0
  c.checkpoint_every_steps = 40
  model = create_model(c.model)
  x = jnp.zeros((1, c.data.tile, c.data.tile, c.data.bands))
  params = train_state.create_train_state(c, jax.random.key(0, impl='rbg'), model).params
  forward = jax.make_jaxpr(lambda p: model.apply({'params': p}, x, x, train=False))(params)
  assert 'bf16' in str(forward) and forward.out_avals[0].dtype == jnp.float32
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    state = train_lib.train_and_evaluate(c, str(tmp_path))
  assert not [w for w in caught if 'donat' in str(w.message).lower()]
  floats = [x for x in jax.tree.leaves((state.params, state.opt_state))
            if jnp.issubdtype(x.dtype, jnp.floating)]
  assert floats and all(x.dtype == jnp.float32 for x in floats)
  log = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  losses = [r['loss'] for r in log]
  assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:5])
  report = eval_lib.evaluate(c, str(tmp_path), 'test')
  assert np.isfinite(report['pooled']['qa'])
  assert (tmp_path / 'eval' / 'test' / 'metrics.json').exists()


def test_fresh_and_restored_states_share_the_step_signature(tiny_config):
  # A weak int step would compile the train step a second time after a restore, or
  # after pmap's first multi-process round trip (which drops weak types).
  state = train_state.create_train_state(tiny_config, jax.random.key(0, impl='rbg'))
  assert state.step.dtype == jnp.int32 and not state.step.weak_type


def test_prefetch_builds_the_next_batch_while_the_caller_holds_one():
  built = {s: threading.Event() for s in range(3, 7)}

  def make(s):
    built[s].set()
    return s * s

  items = train_lib.prefetch(make, range(3, 7))
  assert next(items) == (3, 9)
  assert built[4].wait(timeout=10)
  assert list(items) == [(4, 16), (5, 25), (6, 36)]


def test_prefetch_raises_the_error_of_a_failed_batch():
  def make(s):
    if s == 2:
      raise ValueError('bad block')
    return s

  items = train_lib.prefetch(make, range(5))
  assert [next(items), next(items)] == [(0, 0), (1, 1)]
  with pytest.raises(ValueError, match='bad block'):
    next(items)


def test_device_batch_is_the_host_batch_split_over_local_devices(tiny_config):
  sampler = pipeline.BlockSampler(pipeline.load_split(tiny_config.data, 'train'),
                                  tiny_config.data.tile, tiny_config.seed)
  batch = train_lib.device_batch(sampler, tiny_config, 5)
  host = train_lib.shard(sampler.batch(5, tiny_config.batch_size))
  for k in host:
    np.testing.assert_array_equal(np.asarray(batch[k]), host[k])
    assert [s.device for s in batch[k].addressable_shards] == jax.local_devices()
    assert batch[k].addressable_shards[1].data.shape == (1,) + host[k].shape[1:]
