"""dpfcn_jax/benchmark.py: the FLOP count of the PyTorch reference, and the --json line."""
import json
import math
import os
import subprocess
import sys

import pytest

from conftest import REPO, load_config
from dpfcn_jax import benchmark

TINY = ['--config.model.width=4', '--config.model.jfl_width=4', '--config.model.depth=2',
        '--config.data.tile=32', '--runs=1', '--warmup=1', '--json']


def test_analytic_flops_are_the_reference_figures():
  # ../shared/bench: 51.79 GFLOP forward, 155.26 forward + backward per 128² pair at width 64.
  c = load_config('default')
  assert benchmark.analytic_gflop(c, training=False) == pytest.approx(51.791265792)
  assert benchmark.analytic_gflop(c, training=True) == pytest.approx(155.260594176)


def test_peak_lookup_names_the_card_and_dtype():
  assert benchmark.peak_tflops('NVIDIA H100 80GB HBM3', 'bfloat16') == 989.4
  assert benchmark.peak_tflops('NVIDIA H100 80GB HBM3', 'float32') == 494.7
  assert math.isnan(benchmark.peak_tflops('cpu', 'float32'))


@pytest.mark.parametrize('mode', ['train', 'infer', 'scene'])
def test_json_summary_on_two_devices(mode, tiny_config):
  env = dict(os.environ, JAX_PLATFORMS='cpu', JAX_NUM_CPU_DEVICES='2')
  scene = ['--scene_size=80', '--config.infer.stride=24'] if mode == 'scene' else []
  r = subprocess.run([sys.executable, '-m', 'dpfcn_jax.benchmark', '--config=configs/synthetic.py',
                      f'--mode={mode}', '--peak_tflops=0.5', *TINY, *scene], cwd=REPO, env=env,
                     capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  s = json.loads(r.stdout.strip().splitlines()[-1])
  assert s['mode'] == mode and s['device'] == '2 x cpu' and s['gflops_per_s'] > 0
  assert s['peak_rss_mb'] > 0 and s['calls_peak_rss_mb'] > 0
  assert s['device_peak_mb'] is None  # XLA:CPU keeps no allocator statistics
  # MFU: the analytic count over 2 devices x 0.5 TFLOP/s.
  assert s['mfu'] == pytest.approx(s['analytic_gflop_per_call'] / s['seconds_per_call'] / 1e3)
  if mode == 'scene':
    # 80 px, 32-px windows every 24 px: 3 x 3 windows (the analytic count), 8 per call.
    assert s['megapixels_per_s'] > 0 and s['pairs_per_s'] is None and s['batch_size'] == 16
    assert s['flops_source'] == 'analytic'
    assert s['analytic_gflop_per_call'] == pytest.approx(
        9 * benchmark.analytic_gflop(tiny_config, training=False))  # TINY's widths
  else:
    assert s['batch_size'] == 8 and s['pairs_per_s'] > 0 and s['flops_source'] == 'xla'
    # XLA costs a pmapped step per device; the summary is for both.
    assert s['xla_gflop_per_call'] == pytest.approx(s['analytic_gflop_per_call'], rel=0.15)



def test_data_mode_prints_the_input_pipeline_rate():
  env = dict(os.environ, JAX_PLATFORMS='cpu', JAX_NUM_CPU_DEVICES='2')
  r = subprocess.run([sys.executable, '-m', 'dpfcn_jax.benchmark', '--config=configs/synthetic.py',
                      '--mode=data', '--batch_size=4', '--runs=6', '--warmup=1', '--json',
                      '--config.data.tile=32', '--config.data.synthetic.num_scenes.train=2',
                      '--config.data.synthetic.min_side=96', '--config.data.synthetic.max_side=128',
                      '--config.infer.stride=24', '--config.data.loader_workers=3'],
                     cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  line, summary = r.stdout.strip().splitlines()[-2:]
  s = json.loads(summary)
  assert line.startswith('data batch=4 on 2 x cpu:') and 'pairs/s (3 workers' in line
  assert s['mode'] == 'data' and s['pairs_per_s'] > 0 and s['loader_workers'] == 3
  assert s['pairs_per_s'] == pytest.approx(4 / s['seconds_per_call'])
