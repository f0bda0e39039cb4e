"""scene_benchmark: predict's time and memory by scene size and by batch length."""
import subprocess
import sys

import jax

from conftest import REPO, load_config
from dpfcn_jax import checkpoint, train_state


def test_batch_mode_prints_a_row_per_count_and_keeps_its_scratch_ours(tmp_path):
  c = load_config('synthetic')
  c.model.width, c.model.jfl_width, c.model.depth, c.data.tile, c.infer.stride = 4, 4, 2, 32, 24
  state = train_state.create_train_state(c, jax.random.key(0, impl=c.prng_impl))
  checkpoint.save(checkpoint.manager(str(tmp_path / 'work')), jax.device_get(state), c)
  cmd = [sys.executable, '-m', 'dpfcn_jax.scene_benchmark', f'--workdir={tmp_path / "work"}',
         '--batch_scenes=1,3', '--batch_side=64', f'--scratch={tmp_path / "scratch"}']
  done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  rows = [l.split('|')[1:-1] for l in done.stdout.splitlines() if l.startswith('| ') and
          l.split('|')[1].strip().isdigit()]
  assert [int(r[0]) for r in rows] == [1, 3] and all(float(r[3]) > 0 for r in rows)
  assert len(list((tmp_path / 'scratch' / 'batch3' / 'out').glob('s000*/lim.tif'))) == 3
  (tmp_path / 'mine').mkdir()
  (tmp_path / 'mine' / 'notes.txt').write_text('x')
  cmd[-1] = f'--scratch={tmp_path / "mine"}'
  refused = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert refused.returncode == 2 and 'did not write' in refused.stderr
  assert [p.name for p in (tmp_path / 'mine').iterdir()] == ['notes.txt']
