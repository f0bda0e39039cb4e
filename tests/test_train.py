"""train.py -> eval.py end to end, as a user runs them, on the real AirChange pairs."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from PIL import Image

from conftest import DATA, REPO
from dpfcn_jax import checkpoint, scene_map

AIRCHANGE = DATA / 'sztaki-airchange'
TINY = ['--config.model.width=4', '--config.model.depth=2', '--config.batch_size=2',
        '--config.num_train_steps=2', '--config.log_every_steps=1',
        '--config.eval_every_steps=0', '--config.checkpoint_every_steps=2']


def _run(module, *args):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, '-m', module, *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=600)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('airchange')
  r = _run('dpfcn_jax.train', '--config=configs/airchange.py', f'--workdir={workdir}',
           f'--config.data.root={AIRCHANGE}', *TINY)
  assert r.returncode == 0, r.stderr[-3000:]
  return workdir


def test_train_writes_checkpoint_metrics_and_config(trained):
  assert (trained / 'checkpoints' / '2').is_dir()
  log = [json.loads(l) for l in (trained / 'metrics.jsonl').read_text().splitlines()]
  assert [r['step'] for r in log] == [1, 2] and all(np.isfinite(r['loss']) for r in log)
  assert json.loads((trained / 'config.json').read_text())['model']['width'] == 4


def test_checkpoints_written_before_later_config_fields_still_restore(trained, tmp_path):
  old = tmp_path / 'old'
  shutil.copytree(trained, old)
  saved = old / 'checkpoints' / '2' / 'config' / 'metadata'
  cfg = json.loads(saved.read_text())
  for key in checkpoint.ADDED_FIELDS:  # the config as written before the field existed
    *parents, leaf = key.split('.')
    node = cfg
    for part in parents:
      node = node[part]
    del node[leaf]
  saved.write_text(json.dumps(cfg))
  _, params, restored = scene_map.restore_params(str(old))
  assert params and restored.model.width == 4
  assert (restored.model.input_norm, restored.model.dropout_bits) == ('none', 32)
  assert (restored.data.positive_fraction, restored.xla_flags) == (0.0, '')
  assert restored.model.winograd is False and restored.model.winograd_wgrad is False


def test_eval_val_writes_scores_and_maps(trained):
  r = _run('dpfcn_jax.eval', '--config=configs/airchange.py', f'--workdir={trained}',
           '--split=val', f'--config.data.root={AIRCHANGE}', *TINY)
  assert r.returncode == 0, r.stderr[-3000:]
  out = trained / 'eval' / 'val'
  report = json.loads((out / 'metrics.json').read_text())
  assert set(report['sites']) == {'szada-7', 'tiszadob-4'}
  for site in report['sites'].values():
    assert {'cp', 'cr', 'qa', 'oa', 'aa', 'f1', 'iou', 'kappa', 'tp', 'fp', 'fn', 'tn'} <= set(site)
    assert site['tp'] + site['fp'] + site['fn'] + site['tn'] == 952 * 640
  assert report['pooled']['tp'] == sum(s['tp'] for s in report['sites'].values())
  assert tifffile.imread(out / 'lim_szada-7.tif').shape == (640, 952)
  assert Image.open(out / 'map_szada-7.png').size == (952, 640)
  assert 'QA' in r.stdout and 'pooled' in r.stdout


def test_eval_test_split_runs_unchanged_on_a_root_with_test_pairs(trained, tmp_path):
  root = tmp_path / 'root'
  (root / 'test').mkdir(parents=True)
  for split in ('train', 'val'):
    os.symlink(AIRCHANGE / split, root / split)
  # Stand-ins for the held-back pairs, under their real names.
  os.symlink(AIRCHANGE / 'val' / 'szada-7', root / 'test' / 'szada-1')
  os.symlink(AIRCHANGE / 'val' / 'tiszadob-4', root / 'test' / 'tiszadob-3')
  r = _run('dpfcn_jax.eval', '--config=configs/airchange.py', f'--workdir={trained}',
           '--split=test', f'--config.data.root={root}', *TINY)
  assert r.returncode == 0, r.stderr[-3000:]
  report = json.loads((trained / 'eval' / 'test' / 'metrics.json').read_text())
  assert set(report['sites']) == {'szada-1', 'tiszadob-3'}
  site = report['sites']['szada-1']
  assert site['tp'] + site['fp'] + site['fn'] + site['tn'] == 784 * 448  # standard crop


def test_eval_without_checkpoint_fails_clearly(tmp_path):
  r = _run('dpfcn_jax.eval', '--config=configs/airchange.py', f'--workdir={tmp_path}',
           '--split=val', f'--config.data.root={AIRCHANGE}')
  assert r.returncode == 2
  assert 'no checkpoint found' in r.stderr and str(tmp_path) in r.stderr
  assert not (tmp_path / 'eval').exists()


def test_unknown_split_fails_clearly(trained):
  r = _run('dpfcn_jax.eval', '--config=configs/airchange.py', f'--workdir={trained}',
           '--split=dev', f'--config.data.root={AIRCHANGE}')
  assert r.returncode == 2 and "unknown split 'dev'" in r.stderr
