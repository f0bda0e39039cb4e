"""Faults during training: pre-emption, kills, broken checkpoints, non-finite losses,
and bit-for-bit reproducibility.

Data order and dropout keys are functions of (seed, step), so a run that was
stopped and resumed must end with exactly the parameters of one that never was.
Parameters are compared as written on disk, restored as numpy by orbax.
"""
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from conftest import REPO
from dpfcn_jax import checkpoint, train_lib, train_state
from dpfcn_jax.errors import CheckpointError

# Config fields that the command-line runs copy from the `config` fixture.
SHARED = ('model.width', 'model.jfl_width', 'model.depth', 'model.keep_prob', 'data.tile', 'infer.stride',
          'batch_size', 'data.synthetic.min_side', 'data.synthetic.max_side',
          'data.synthetic.num_scenes.train')
ENDLESS = 10**6   # num_train_steps of runs that a signal must stop
POLL_S = 0.005    # short enough to catch a save in progress (about 0.1 s or more)
TIMEOUT_S = 300
KEEP_PROB = 0.9   # dropout on, so its keys must repeat too


@pytest.fixture
def config(tiny_config):
  tiny_config.model.keep_prob = KEEP_PROB
  return tiny_config


def _flags(config):
  def get(key):
    value = config
    for part in key.split('.'):
      value = value[part]
    return value
  return [f'--config.{k}={get(k)}' for k in SHARED]


def _start(config, workdir, log, *flags):
  """`python -m dpfcn_jax.train` on 2 CPU devices like the tests, logging to `log`."""
  env = dict(os.environ, JAX_PLATFORMS='cpu', JAX_NUM_CPU_DEVICES='2')
  args = [sys.executable, '-m', 'dpfcn_jax.train', '--config=configs/synthetic.py',
          f'--workdir={workdir}', *_flags(config), '--config.eval_every_steps=0',
          '--config.log_every_steps=1', *flags]
  with open(log, 'w') as f:
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT)


def _wait_for(condition, proc, log, what):
  deadline = time.monotonic() + TIMEOUT_S
  while not condition():
    if proc.poll() is not None or time.monotonic() > deadline:
      proc.kill()
      pytest.fail(f'no {what}: {log.read_text()[-3000:]}')
    time.sleep(POLL_S)


def _logged_steps(workdir):
  path = workdir / 'metrics.jsonl'
  text = path.read_text() if path.exists() else ''
  return [json.loads(l)['step'] for l in text.splitlines(keepends=True) if l.endswith('\n')]


def _checkpoint_dirs(workdir):
  folder = workdir / 'checkpoints'
  return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _steps(workdir):
  return sorted(int(n) for n in _checkpoint_dirs(workdir) if n.isdigit())


def _saved_state(workdir, step):
  """The train state of a checkpoint as numpy arrays, read back by orbax."""
  path = workdir / 'checkpoints' / str(step) / 'state'
  ckptr = ocp.PyTreeCheckpointer()
  tree = ckptr.metadata(path).item_metadata.tree
  args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
  return ckptr.restore(path, args=ocp.args.PyTreeRestore(restore_args=args))


def _assert_identical(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)


def _uninterrupted(config, workdir, steps):
  """The checkpoint of a run of `steps` steps that nothing stopped."""
  config.num_train_steps = config.checkpoint_every_steps = steps
  config.eval_every_steps = 0
  train_lib.train_and_evaluate(config, str(workdir))
  return _saved_state(workdir, steps)


def test_sigterm_saves_the_current_step_and_exits_0(config, tmp_path):
  workdir, log = tmp_path / 'run', tmp_path / 'run.log'
  proc = _start(config, workdir, log, f'--config.num_train_steps={ENDLESS}',
                f'--config.checkpoint_every_steps={ENDLESS}')
  _wait_for(lambda: _logged_steps(workdir), proc, log, 'logged step')
  proc.send_signal(signal.SIGTERM)
  assert proc.wait(timeout=TIMEOUT_S) == 0, log.read_text()[-3000:]
  (stopped,) = _steps(workdir)
  assert f'signal 15: checkpoint saved at step {stopped}, stopping' in log.read_text()
  assert _logged_steps(workdir)[-1] == stopped
  # The checkpoint holds the state of step `stopped` of an uninterrupted run.
  _assert_identical(_saved_state(workdir, stopped),
                    _uninterrupted(config, tmp_path / 'straight', stopped))


def test_sigterm_waits_for_at_most_two_queued_steps(config, tmp_path, monkeypatch):
  """Pre-emption grace is short: the save must not wait for steps queued on the device.

  Each step gets matmuls that make the device slower than the loop's dispatch, so without
  a bound async dispatch would queue steps up to the next log step.
  """
  signal_at, dispatched, queued = 20, [], []

  def slow_step(state, batch, rng, *, config, _step=train_lib.train_step):
    state, step_metrics = _step(state, batch, rng, config=config)
    x = jnp.full((384, 384), 1e-3)
    for _ in range(12):
      x = jnp.tanh(x @ x)
    return state, {**step_metrics, 'loss': step_metrics['loss'] + 0.0 * x[0, 0]}

  def make(config, devices=None, _make=train_lib.make_p_train_step):
    p_step = _make(config, devices)

    def step(*args):
      queued.append(sum(not m.is_ready() for m in dispatched))
      out = p_step(*args)
      dispatched.append(out[1]['loss'])
      if len(dispatched) == signal_at:
        os.kill(os.getpid(), signal.SIGTERM)
      return out
    return step

  monkeypatch.setattr(train_lib, 'train_step', slow_step)
  monkeypatch.setattr(train_lib, 'make_p_train_step', make)
  config.num_train_steps, config.log_every_steps = 100, 100
  config.checkpoint_every_steps, config.eval_every_steps = 1000, 0
  state = train_lib.train_and_evaluate(config, str(tmp_path / 'run'))
  assert int(jax.device_get(state.step)) == signal_at == _steps(tmp_path / 'run')[-1]
  assert max(queued) <= 2, queued


def test_sigkill_mid_save_loses_only_steps_since_the_last_checkpoint(config, tmp_path, caplog):
  workdir, log = tmp_path / 'run', tmp_path / 'run.log'
  every = 2
  proc = _start(config, workdir, log, f'--config.num_train_steps={ENDLESS}',
                f'--config.checkpoint_every_steps={every}')
  # Kill while a save after the first is under way: orbax writes it in a scratch folder.
  in_progress = lambda: [n for n in _checkpoint_dirs(workdir) if 'orbax-checkpoint-tmp' in n]
  _wait_for(lambda: _steps(workdir) and in_progress(), proc, log, 'save in progress')
  proc.kill()
  proc.wait(timeout=TIMEOUT_S)
  last = _steps(workdir)[-1]
  killed = int(in_progress()[0].split('.')[0])
  assert killed == last + every
  assert last < _logged_steps(workdir)[-1] <= last + every
  # The restart skips the scratch folder, resumes at `last` and redoes the lost steps.
  # It runs in this process, like the uninterrupted run below, which reuses its compiled step.
  end = killed + every
  config.num_train_steps, config.checkpoint_every_steps = end, every
  config.eval_every_steps = 0
  with caplog.at_level(logging.INFO, logger='dpfcn_jax'):
    train_lib.train_and_evaluate(config, str(workdir))
  assert f'resumed from step {last} ' in caplog.text
  assert _steps(workdir)[-2:] == [killed, end]
  _assert_identical(_saved_state(workdir, end),
                    _uninterrupted(config, tmp_path / 'straight', end))


# orbax leaves a callback on a closed event loop when a restore fails; it is harmless.
@pytest.mark.filterwarnings('ignore::pytest.PytestUnraisableExceptionWarning')
def test_unreadable_newest_checkpoint_is_skipped_and_replaced(config, tmp_path, caplog):
  config.eval_every_steps = 0
  train_lib.train_and_evaluate(config, str(tmp_path))
  straight = _saved_state(tmp_path, 4)
  # Files of a finished save losing their tails: the arrays' data and the config.
  for path in (tmp_path / 'checkpoints' / '4').rglob('*'):
    if path.is_file() and path.parent.name in ('d', 'config'):
      path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
  with pytest.raises(Exception):
    _saved_state(tmp_path, 4)
  with pytest.raises(CheckpointError, match='step 4 in .*: its config cannot be read'):
    checkpoint.saved_config(str(tmp_path), 4)
  train_lib.train_and_evaluate(config, str(tmp_path))
  warnings = [r.getMessage() for r in caplog.records if r.levelname == 'WARNING']
  assert any(re.match(r'checkpoint step 4 in .* is unreadable', w) for w in warnings)
  assert not any('tensorstore_spec' in w for w in warnings)  # one readable line
  assert any('replacing unreadable checkpoint step 4' in w for w in warnings)
  assert _steps(tmp_path) == [2, 4]
  _assert_identical(_saved_state(tmp_path, 4), straight)


def test_non_finite_loss_stops_with_the_step_and_keeps_good_checkpoints(config, tmp_path):
  workdir, log = tmp_path / 'run', tmp_path / 'run.log'
  # Adam moves every weight by about the learning rate: 1e30 overflows the next forward pass.
  proc = _start(config, workdir, log, '--config.num_train_steps=20',
                '--config.checkpoint_every_steps=1', '--config.learning_rate=1e30')
  assert proc.wait(timeout=TIMEOUT_S) == 2, log.read_text()[-3000:]
  text = log.read_text()
  assert 'Traceback' not in text
  (bad,) = re.findall(r'^error: loss is (?:nan|inf|-inf) at step (\d+): stopping', text, re.M)
  assert 1 < int(bad) < 20  # step 1 runs on the initial weights
  assert _steps(workdir)[-1] == int(bad) - 1  # every save before the bad step, none after
  for step in _steps(workdir):
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(_saved_state(workdir, step)))


def test_same_seed_gives_bit_identical_parameters(config, tmp_path):
  config.eval_every_steps = 0
  runs = [train_lib.train_and_evaluate(config, str(tmp_path / d)) for d in ('a', 'b')]
  _assert_identical(*(jax.device_get(r.params) for r in runs))
  init_rng, _ = jax.random.split(jax.random.key(config.seed, impl=config.prng_impl))
  init = train_state.create_train_state(config, init_rng)  # as train_and_evaluate does
  untouched, trained = (jax.tree.leaves(jax.device_get(s.params)) for s in (init, runs[0]))
  # The equality above is of trained weights, not of ones training never moved.
  assert all(not np.array_equal(x, y) for x, y in zip(untouched, trained))


def test_best_checkpoint_survives_a_restart(config, tmp_path):
  config.select_best, config.eval_every_steps, config.checkpoint_every_steps = 'qa', 2, 2
  config.num_train_steps = 2
  train_lib.train_and_evaluate(config, str(tmp_path))
  best = checkpoint.manager(str(tmp_path / 'best'), create=False)
  assert best.all_steps() == [2]
  first = checkpoint.best_score(str(tmp_path), 'qa')
  assert 0.0 <= first <= 1.0
  # A stored score no val can beat: after resuming, later vals must not replace it.
  state = checkpoint.restore(best, jax.eval_shape(lambda: train_state.create_train_state(
      config, jax.random.key(0, impl=config.prng_impl))), train_state.replicated_sharding())
  checkpoint.save(best, state, config, {'qa': 2.0})
  config.num_train_steps = 6
  train_lib.train_and_evaluate(config, str(tmp_path))
  best = checkpoint.manager(str(tmp_path / 'best'), create=False)
  assert best.all_steps() == [2] and checkpoint.best_score(str(tmp_path), 'qa') == 2.0
  assert checkpoint.best_score(str(tmp_path / 'nowhere'), 'qa') == -np.inf


@pytest.mark.filterwarnings('ignore::pytest.PytestUnraisableExceptionWarning')
def test_eval_falls_back_from_an_unreadable_newest_checkpoint(config, tmp_path, caplog):
  from dpfcn_jax import scene_map  # pylint: disable=g-import-not-at-top
  config.eval_every_steps = 0
  train_lib.train_and_evaluate(config, str(tmp_path))
  for path in (tmp_path / 'checkpoints' / '4').rglob('*'):
    if path.is_file() and path.parent.name in ('d', 'config'):
      path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
  _, params, _ = scene_map.restore_params(str(tmp_path))
  _assert_identical(jax.device_get(params), _saved_state(tmp_path, 2)["params"])
  assert any('trying an older checkpoint' in r.getMessage() for r in caplog.records)
  with pytest.raises(CheckpointError, match='step 4'):
    scene_map.restore_params(str(tmp_path), step=4)
