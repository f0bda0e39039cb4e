"""Speed and memory of a train step, an inference batch, or a whole scene (not a test).

python -m dpfcn_jax.benchmark --config=configs/X.py --mode=train|infer|scene
    [--batch_size=B] [--runs=N] [--json]

Compiles once, warms up, times `--runs` calls and prints the median as pairs/s (scene
mode: megapixels/s), the achieved GFLOP/s (FLOPs from XLA's cost analysis of the
compiled step, beside the analytic count of Table I's convolutions), peak RSS (of the
process, and since the warm-up: the calls alone, without set-up and compilation) and the
devices. `--json` adds one JSON object on the last line.
"""
import json
import resource
import statistics
import time

from absl import app, flags
import jax
import numpy as np
from ml_collections import config_flags

from dpfcn_jax import cli, inference, train_lib
from dpfcn_jax.data import synthetic
from dpfcn_jax.models import create_model

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file.', lock_config=True)
_MODE = flags.DEFINE_enum('mode', 'train', ['train', 'infer', 'scene'], 'What to time.')
_BATCH = flags.DEFINE_integer('batch_size', None, 'Pairs per call (default: config).')
_RUNS = flags.DEFINE_integer('runs', 5, 'Timed calls after warm-up.')
_WARMUP = flags.DEFINE_integer('warmup', 2, 'Untimed calls after compilation.')
_SCENE = flags.DEFINE_integer('scene_size', 1024, 'Side of the synthetic scene (scene mode).')
_JSON = flags.DEFINE_bool('json', False, 'Print a JSON summary as the last line.')
flags.mark_flags_as_required(['config'])


def analytic_gflop(config, training):
  """Table I convolution FLOPs per 128x128-equivalent tile pair (2 per multiply-add).

  Training counts the forward pass, the weight gradients and the data gradients
  (none for the input images): the figure the PyTorch reference quotes.
  """
  m, t, b = config.model, config.data.tile, config.data.bands
  convs = []  # (pixels, k*k, cin, cout)
  def dfe():
    cin = b
    for level in range(m.depth + 1):
      px, cout = (t // 2**level)**2, m.width * 2**level
      convs.extend([(px, 9, cin, cout, level == 0), (px, 9, cout, cout, False)])
      cin = cout
    for level in reversed(range(m.depth)):
      px, cout = (t // 2**level)**2, m.width * 2**level
      convs.append((px, 4 / 4, 2 * cout, cout, False))  # 2x2 up-conv: 4 taps per output quad
      convs.extend([(px, 9, 2 * cout, cout, False), (px, 9, cout, cout, False)])
  dfe()
  dfe()
  convs.extend([(t * t, 9, 2 * m.width, m.jfl_width, False),
                (t * t, 9, m.jfl_width, m.jfl_width, False), (t * t, 1, m.jfl_width, 2, False)])
  fwd = sum(2 * px * k * ci * co for px, k, ci, co, _ in convs)
  if not training:
    return fwd / 1e9
  dgrad = sum(2 * px * k * ci * co for px, k, ci, co, first in convs if not first)
  return (2 * fwd + dgrad) / 1e9


def _cost_gflop(compiled):
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get('flops', float('nan'))) / 1e9 if cost else float('nan')


def _reset_peak_rss():
  """Restarts the kernel's resident-set high-water mark (Linux >= 4.0), so that
  _peak_rss_mb then covers the calls only, not set-up and compilation."""
  try:
    with open('/proc/self/clear_refs', 'w') as f:
      f.write('5')
    return True
  except OSError:
    return False


def _peak_rss_mb():
  with open('/proc/self/status') as f:
    return next(int(l.split()[1]) for l in f if l.startswith('VmHWM:')) / 1024


def _time(fn, runs, warmup):
  calls_peak = _reset_peak_rss()
  for _ in range(warmup):
    jax.block_until_ready(fn())
  times = []
  for _ in range(runs):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t)
  return statistics.median(times), _peak_rss_mb() if calls_peak else float('nan')


def run(config, mode, batch, runs, warmup, scene_size):
  """Returns the summary dict printed by main."""
  rng = np.random.default_rng(0)
  model = create_model(config.model)
  key = jax.random.key(config.seed, impl=config.prng_impl)
  state = train_lib.create_train_state(config, key, model)
  n_dev, t = jax.local_device_count(), config.data.tile
  pairs = lambda n: rng.random((n_dev, n // n_dev, t, t, config.data.bands), np.float32)
  if mode == 'train':
    step = train_lib.make_p_train_step(config)
    state = jax.device_put(state, train_lib.replicated_sharding())
    b = {'pre': pairs(batch), 'post': pairs(batch),
         'label': rng.integers(0, 2, (n_dev, batch // n_dev, t, t)).astype(np.int32),
         'valid': np.ones((n_dev, batch // n_dev, t, t), np.float32)}
    t0 = time.perf_counter()
    compiled = step.lower(state, b, key).compile()
    compile_s = time.perf_counter() - t0
    holder = {'state': state}
    def call():
      holder['state'], m = step(holder['state'], b, key)
      return m['loss']
    seconds, calls_rss = _time(call, runs, warmup)
    units, gflop = batch / seconds, _cost_gflop(compiled)
  elif mode == 'infer':
    infer = inference.make_infer_fn(model)
    params = inference.local_copy(state.params)
    pre, post = pairs(batch), pairs(batch)
    t0 = time.perf_counter()
    compiled = infer.lower(params, pre, post, key).compile()
    compile_s = time.perf_counter() - t0
    seconds, calls_rss = _time(lambda: infer(params, pre, post, key)[0], runs, warmup)
    units, gflop = batch / seconds, _cost_gflop(compiled)
  else:
    s = synthetic.generate_scene(config.seed, scene_size, scene_size)
    pre, post = (s[k].astype(np.float32) / 255 for k in ('pre', 'post'))
    infer = inference.make_infer_fn(model, tta=config.infer.tta)
    params = inference.local_copy(state.params)
    call = lambda: inference.scene_probability(infer, params, pre, post, config.infer.tile,
                                               config.infer.stride, config.infer.batch_size)[0]
    t0 = time.perf_counter()
    call()
    compile_s = time.perf_counter() - t0
    seconds, calls_rss = _time(call, runs, 0)
    units, gflop = scene_size**2 / 1e6 / seconds, float('nan')
  per_call = analytic_gflop(config, mode == 'train') * (batch if mode != 'scene' else 0)
  return {
      'mode': mode, 'batch_size': batch, 'width': config.model.width,
      'dtype': config.model.dtype, 'seconds_per_call': seconds, 'compile_s': compile_s,
      ('megapixels_per_s' if mode == 'scene' else 'pairs_per_s'): units,
      'pairs_per_s': units if mode != 'scene' else float('nan'),
      'gflops_per_s': gflop / seconds if gflop == gflop else per_call / seconds,
      'xla_gflop_per_call': gflop, 'analytic_gflop_per_call': per_call,
      'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
      'calls_peak_rss_mb': calls_rss,
      'device': f'{jax.local_device_count()} x {jax.devices()[0].device_kind}',
  }


def main(argv):
  del argv
  config = _CONFIG.value
  cli.setup(config.xla_flags)
  batch = _BATCH.value or config.batch_size
  with cli.user_errors():
    r = run(config, _MODE.value, batch, _RUNS.value, _WARMUP.value, _SCENE.value)
  rate = (f'{r["megapixels_per_s"]:.3f} Mpx/s' if r['mode'] == 'scene'
          else f'{r["pairs_per_s"]:.3f} pairs/s')
  print(f'{r["mode"]} width={r["width"]} batch={r["batch_size"]} {r["dtype"]} on {r["device"]}: '
        f'{r["seconds_per_call"]:.3f} s/call, {rate}, {r["gflops_per_s"]:.1f} GFLOP/s '
        f'(XLA {r["xla_gflop_per_call"]:.1f}, analytic {r["analytic_gflop_per_call"]:.1f} '
        f'GFLOP/call), compile {r["compile_s"]:.1f} s, peak RSS {r["peak_rss_mb"]:.0f} MiB '
        f'(during the timed calls {r["calls_peak_rss_mb"]:.0f} MiB)')
  if _JSON.value:
    print(json.dumps(r))


if __name__ == '__main__':
  app.run(main)
