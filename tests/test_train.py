"""train.py -> eval.py end to end, as a user runs them, on pairs laid out and stored as
the AirChange ones (tests/fixture_data.py), and eval on the real pairs where present."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from PIL import Image

import fixture_data
from conftest import REPO, real_data
from dpfcn_jax import checkpoint, scene_map

H, W = 80, 120  # not multiples of the 128 px blocks, as the real 640x952
CROP = (48, 104)  # stands in for the test pairs' standard 448x784 crop
TINY = ['--config.model.width=4', '--config.model.depth=2', '--config.batch_size=2',
        '--config.num_train_steps=2', '--config.log_every_steps=1',
        '--config.eval_every_steps=0', '--config.checkpoint_every_steps=2']


def _run(module, *args):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, '-m', module, *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=600)


@pytest.fixture(scope='module')
def airchange(tmp_path_factory):
  root = tmp_path_factory.mktemp('sztaki-airchange')
  fixture_data.write_airchange(root, H, W)
  return root


@pytest.fixture(scope='module')
def trained(tmp_path_factory, airchange):
  workdir = tmp_path_factory.mktemp('airchange')
  r = _run('dpfcn_jax.train', '--config=configs/airchange.py', f'--workdir={workdir}',
           f'--config.data.root={airchange}', *TINY)
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
  cfg['model'].update(cfg.pop('compute'))  # where the compute policy sat before
  for key in checkpoint.ADDED_FIELDS:  # the config as written before the field existed
    *parents, leaf = key.replace('compute.', 'model.').split('.')
    node = cfg
    for part in parents:
      node = node[part]
    del node[leaf]
  cfg['model']['fast_wgrad'] = False  # a value of the old layout: moved, not defaulted
  saved.write_text(json.dumps(cfg))
  _, params, restored = scene_map.restore_params(str(old))
  assert params and restored.model.width == 4
  assert (restored.model.input_norm, restored.compute.dropout_bits) == ('none', 32)
  assert (restored.data.positive_fraction, restored.xla_flags) == (0.0, '')
  assert restored.compute.winograd is False and restored.compute.winograd_wgrad is False
  assert restored.compute.fast_wgrad is False and 'fast_wgrad' not in restored.model
  assert (restored.infer.connectivity, restored.infer.quicklook_side) == (4, 2048)


def test_eval_val_writes_scores_and_maps(trained, airchange):
  r = _run('dpfcn_jax.eval', '--config=configs/airchange.py', f'--workdir={trained}',
           '--split=val', f'--config.data.root={airchange}', *TINY)
  assert r.returncode == 0, r.stderr[-3000:]
  out = trained / 'eval' / 'val'
  report = json.loads((out / 'metrics.json').read_text())
  assert set(report['sites']) == {'szada-7', 'tiszadob-4'}
  for site in report['sites'].values():
    assert {'cp', 'cr', 'qa', 'oa', 'aa', 'f1', 'iou', 'kappa', 'tp', 'fp', 'fn', 'tn'} <= set(site)
    assert site['tp'] + site['fp'] + site['fn'] + site['tn'] == W * H
  assert report['pooled']['tp'] == sum(s['tp'] for s in report['sites'].values())
  assert tifffile.imread(out / 'lim_szada-7.tif').shape == (H, W)
  assert Image.open(out / 'map_szada-7.png').size == (W, H)
  assert 'QA' in r.stdout and 'pooled' in r.stdout


def test_eval_test_split_runs_unchanged_on_a_root_with_test_pairs(trained, airchange, tmp_path):
  root = tmp_path / 'root'
  (root / 'test').mkdir(parents=True)
  for split in ('train', 'val'):
    os.symlink(airchange / split, root / split)
  # Stand-ins for the held-back pairs, under their real names.
  os.symlink(airchange / 'val' / 'szada-7', root / 'test' / 'szada-1')
  os.symlink(airchange / 'val' / 'tiszadob-4', root / 'test' / 'tiszadob-3')
  r = _run('dpfcn_jax.eval', '--config=configs/airchange.py', f'--workdir={trained}',
           '--split=test', f'--config.data.root={root}', f'--config.data.test_crop={CROP}', *TINY)
  assert r.returncode == 0, r.stderr[-3000:]
  report = json.loads((trained / 'eval' / 'test' / 'metrics.json').read_text())
  assert set(report['sites']) == {'szada-1', 'tiszadob-3'}
  site = report['sites']['szada-1']
  assert site['tp'] + site['fp'] + site['fn'] + site['tn'] == CROP[0] * CROP[1]


def test_eval_on_the_real_pairs(trained, tmp_path):
  work = tmp_path / 'work'
  shutil.copytree(trained, work)
  r = _run('dpfcn_jax.eval', '--config=configs/airchange.py', f'--workdir={work}',
           '--split=val', f'--config.data.root={real_data("sztaki-airchange")}', *TINY)
  assert r.returncode == 0, r.stderr[-3000:]
  report = json.loads((work / 'eval' / 'val' / 'metrics.json').read_text())
  assert set(report['sites']) == {'szada-7', 'tiszadob-4'}
  for site in report['sites'].values():
    assert site['tp'] + site['fp'] + site['fn'] + site['tn'] == 952 * 640


def test_eval_without_checkpoint_fails_clearly(tmp_path, airchange):
  r = _run('dpfcn_jax.eval', '--config=configs/airchange.py', f'--workdir={tmp_path}',
           '--split=val', f'--config.data.root={airchange}')
  assert r.returncode == 2
  assert 'no checkpoint found' in r.stderr and str(tmp_path) in r.stderr
  assert not (tmp_path / 'eval').exists()


def test_unknown_split_fails_clearly(trained, airchange):
  r = _run('dpfcn_jax.eval', '--config=configs/airchange.py', f'--workdir={trained}',
           '--split=dev', f'--config.data.root={airchange}')
  assert r.returncode == 2 and "unknown split 'dev'" in r.stderr
