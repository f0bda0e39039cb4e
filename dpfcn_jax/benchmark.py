"""Speed and memory of a train step, an inference batch, or a whole scene (not a test).

python -m dpfcn_jax.benchmark --config=configs/X.py --mode=train|infer|scene|data
    [--batch_size=B] [--runs=N] [--json]

Compiles once, warms up, times `--runs` calls and prints the median as pairs/s (scene
mode: megapixels/s), the achieved GFLOP/s (FLOPs from XLA's cost analysis of the
compiled step, beside the analytic count of Table I's convolutions; scene mode counts
every window the scene is cut into, not the padding of the last batch), peak RSS (of the
process, and since the warm-up: the calls alone, without set-up and compilation) and the
devices. On an accelerator it also prints the devices' peak memory and the model FLOP
utilisation (MFU: analytic FLOP/s over the card's dense peak for the compute dtype, from
`--peak_tflops` or, for the cards in PEAK_TFLOPS, its datasheet). Data mode times the
training input pipeline alone, as train runs it (the config's sites, sampler and loader
threads, batches put on the devices): `--runs` batches after `--warmup`, as pairs/s over
their total time (the loader hands batches over in bursts, so no per-call median).
`--json` adds one JSON object on the last line.
"""
import json
import resource
import statistics
import time

from absl import app, flags
import jax
import numpy as np
from ml_collections import config_flags

from dpfcn_jax import cli, inference, scene_map, train_lib, train_state
from dpfcn_jax.data import augment, pipeline, synthetic
from dpfcn_jax.models import compute, create_model

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file.', lock_config=True)
_MODE = flags.DEFINE_enum('mode', 'train', ['train', 'infer', 'scene', 'data'],
                            'What to time.')
_BATCH = flags.DEFINE_integer('batch_size', None, 'Pairs per call (default: config).')
_RUNS = flags.DEFINE_integer('runs', 5, 'Timed calls after warm-up.')
_WARMUP = flags.DEFINE_integer('warmup', 2, 'Untimed calls after compilation.')
_SCENE = flags.DEFINE_integer('scene_size', 1024, 'Side of the synthetic scene (scene mode).')
_JSON = flags.DEFINE_bool('json', False, 'Print a JSON summary as the last line.')
_PEAK = flags.DEFINE_float('peak_tflops', None,
                           'Dense peak TFLOP/s of one device for the MFU (default: PEAK_TFLOPS).')
flags.mark_flags_as_required(['config'])

# Dense tensor-core peaks per device from NVIDIA's datasheets (no sparsity), keyed by a
# substring of jax's device_kind. float32 runs at XLA's default precision, which is
# TF32 on these cards, so its peak is TF32's.
PEAK_TFLOPS = {
    ('H100 80GB HBM3', 'bfloat16'): 989.4, ('H100 80GB HBM3', 'float32'): 494.7,  # SXM
    ('H200', 'bfloat16'): 989.4, ('H200', 'float32'): 494.7,
    ('A100', 'bfloat16'): 312.0, ('A100', 'float32'): 156.0,
}


XLA_COUNT_MIN = 0.5  # XLA's FLOP count below this share of the analytic one: see run()


def peak_tflops(device_kind, dtype):
  """The PEAK_TFLOPS entry whose key is in `device_kind`, else NaN."""
  return next((v for (kind, dt), v in PEAK_TFLOPS.items()
               if kind in device_kind and dt == dtype), float('nan'))


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
  """GFLOP of one call over all local devices: a pmapped computation is costed per device."""
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float(cost.get('flops', float('nan'))) if cost else float('nan')
  return flops * jax.local_device_count() / 1e9


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


def _device_peak_mb():
  """Largest per-device peak of allocated memory, or NaN where the backend has no
  statistics (XLA:CPU: the process's RSS is the figure there)."""
  stats = [d.memory_stats() for d in jax.local_devices()]
  peaks = [s['peak_bytes_in_use'] for s in stats if s and 'peak_bytes_in_use' in s]
  return max(peaks) / 2**20 if peaks else float('nan')


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


def run(config, mode, batch, runs, warmup, scene_size, peak=None):
  """Returns the summary dict printed by main."""
  rng = np.random.default_rng(0)
  model = create_model(config.model, compute.resolve(config.compute))
  key = jax.random.key(config.seed, impl=config.prng_impl)
  state = train_state.create_train_state(config, key, model)
  n_dev, t = jax.local_device_count(), config.data.tile
  pairs = lambda n: rng.random((n_dev, n // n_dev, t, t, config.data.bands), np.float32)
  if mode == 'train':
    step = train_lib.make_p_train_step(config)
    state = jax.device_put(state, train_state.replicated_sharding())
    b = {'pre': pairs(batch), 'post': pairs(batch),
         'label': rng.integers(0, 2, (n_dev, batch // n_dev, t, t)).astype(np.int32),
         'valid': np.ones((n_dev, batch // n_dev, t, t), np.float32)}
    t0 = time.perf_counter()
    compiled = step.lower(state, b, key).compile()
    compile_s = time.perf_counter() - t0
    # As train_lib after its first step. Not at inference: there the heap glibc keeps
    # saves page faults on every call (2-7% faster, docs/RESULTS.md).
    cli.release_heap()
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
    mapper = scene_map.SceneMapper.from_params(model, inference.local_copy(state.params), config,
                                               scene_map.SCORING)
    call = lambda: mapper.probability(pre, post)[0]
    t0 = time.perf_counter()
    call()
    compile_s = time.perf_counter() - t0
    seconds, calls_rss = _time(call, runs, 0)
    units, gflop = scene_size**2 / 1e6 / seconds, float('nan')
    batch = config.infer.batch_size * n_dev
    windows = len(inference.window_grid(scene_size, scene_size, config.infer.tile,
                                        config.infer.stride))
    passes = augment.NUM_DIHEDRAL if config.infer.tta else 1
  if mode != 'scene':
    windows, passes = batch, 1
  per_call = analytic_gflop(config, mode == 'train') * windows * passes
  kind = jax.devices()[0].device_kind
  # XLA:GPU's cost analysis leaves out the convolutions it hands to cuDNN (a tiny
  # fraction of the analytic count there), and Winograd convolutions (models/winograd.py)
  # multiply a third as often; then the analytic count is the figure: the FLOP/s of
  # the same work done as direct convolutions.
  use_xla = gflop == gflop and gflop >= XLA_COUNT_MIN * per_call
  peak = peak or peak_tflops(kind, config.model.dtype)
  return {
      'mode': mode, 'batch_size': batch, 'width': config.model.width,
      'dtype': config.model.dtype, 'seconds_per_call': seconds, 'compile_s': compile_s,
      ('megapixels_per_s' if mode == 'scene' else 'pairs_per_s'): units,
      'pairs_per_s': units if mode != 'scene' else float('nan'),
      'gflops_per_s': (gflop if use_xla else per_call) / seconds,
      'flops_source': 'xla' if use_xla else 'analytic',
      'xla_gflop_per_call': gflop, 'analytic_gflop_per_call': per_call,
      'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
      'calls_peak_rss_mb': calls_rss, 'device_peak_mb': _device_peak_mb(),
      'mfu': per_call / seconds / 1e3 / (peak * jax.local_device_count()),
      'device': f'{jax.local_device_count()} x {kind}',
  }


def run_data(config, batch, runs, warmup):
  """The summary dict of data mode: train's batch stream from step 0, nothing else."""
  config = config.copy_and_resolve_references()
  config.batch_size, config.num_train_steps = batch, warmup + runs
  train_lib.check_config(config)
  t0 = time.perf_counter()
  sampler = pipeline.sampler(pipeline.load_split(config.data, 'train'), config)
  setup_s = time.perf_counter() - t0
  stream = train_lib.batches(sampler, config, 0)
  for _ in range(warmup):
    jax.block_until_ready(next(stream)[1])
  calls_peak = _reset_peak_rss()
  t0 = time.perf_counter()
  for _, b in stream:
    jax.block_until_ready(b)
  seconds = (time.perf_counter() - t0) / runs
  return {
      'mode': 'data', 'batch_size': batch, 'seconds_per_call': seconds,
      'pairs_per_s': batch / seconds, 'setup_s': setup_s,
      'loader_workers': config.data.loader_workers,
      'prefetch_batches': config.data.prefetch_batches,
      'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
      'calls_peak_rss_mb': _peak_rss_mb() if calls_peak else float('nan'),
      'device': f'{jax.local_device_count()} x {jax.devices()[0].device_kind}',
  }


def _data_line(r):
  return (f'data batch={r["batch_size"]} on {r["device"]}: {r["seconds_per_call"]:.4f} s/batch, '
          f'{r["pairs_per_s"]:.3f} pairs/s ({r["loader_workers"]} workers, '
          f'{r["prefetch_batches"]} batches ahead), sites and sampler {r["setup_s"]:.1f} s, '
          f'peak RSS {r["peak_rss_mb"]:.0f} MiB (during the timed batches '
          f'{r["calls_peak_rss_mb"]:.0f} MiB)')


def _step_line(r):
  rate = (f'{r["megapixels_per_s"]:.3f} Mpx/s' if r['mode'] == 'scene'
          else f'{r["pairs_per_s"]:.3f} pairs/s')
  return (f'{r["mode"]} width={r["width"]} batch={r["batch_size"]} {r["dtype"]} on {r["device"]}: '
          f'{r["seconds_per_call"]:.3f} s/call, {rate}, {r["gflops_per_s"]:.1f} GFLOP/s '
          f'({r["flops_source"]} count) '
          f'(XLA {r["xla_gflop_per_call"]:.1f}, analytic {r["analytic_gflop_per_call"]:.1f} '
          f'GFLOP/call), compile {r["compile_s"]:.1f} s, peak RSS {r["peak_rss_mb"]:.0f} MiB '
          f'(during the timed calls {r["calls_peak_rss_mb"]:.0f} MiB)'
          + ('' if np.isnan(r['device_peak_mb'])
             else f', device peak {r["device_peak_mb"]:.0f} MiB')
          + ('' if np.isnan(r['mfu']) else f', MFU {100 * r["mfu"]:.1f}%'))


def main(argv):
  del argv
  config = _CONFIG.value
  cli.setup(config.xla_flags)
  batch = _BATCH.value or config.batch_size
  with cli.user_errors():
    if _MODE.value == 'data':
      r = run_data(config, batch, _RUNS.value, _WARMUP.value)
      print(_data_line(r))
    else:
      r = run(config, _MODE.value, batch, _RUNS.value, _WARMUP.value, _SCENE.value, _PEAK.value)
      print(_step_line(r))
  if _JSON.value:
    # NaN (a figure this backend lacks) as null: strict JSON readers reject NaN.
    print(json.dumps({k: None if isinstance(v, float) and np.isnan(v) else v
                      for k, v in r.items()}))


if __name__ == '__main__':
  app.run(main)
