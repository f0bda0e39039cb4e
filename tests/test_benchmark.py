"""dpfcn_jax/benchmark.py: the FLOP count of the PyTorch reference, and the --json line."""
import json
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


@pytest.mark.parametrize('mode', ['train', 'infer'])
def test_json_summary_on_two_devices(mode):
  env = dict(os.environ, JAX_PLATFORMS='cpu', JAX_NUM_CPU_DEVICES='2')
  r = subprocess.run([sys.executable, '-m', 'dpfcn_jax.benchmark', '--config=configs/synthetic.py',
                      f'--mode={mode}', *TINY], cwd=REPO, env=env, capture_output=True,
                     text=True, timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  s = json.loads(r.stdout.strip().splitlines()[-1])
  assert s['mode'] == mode and s['device'] == '2 x cpu' and s['batch_size'] == 8
  assert s['pairs_per_s'] > 0 and s['gflops_per_s'] > 0
  assert s['peak_rss_mb'] > 0 and s['calls_peak_rss_mb'] > 0
