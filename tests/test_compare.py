"""Tests for the method comparison (dpfcn_jax.compare_lib and the compare CLI)."""
import csv
import os
import subprocess
import sys

import ml_collections
import numpy as np
import pytest
from PIL import Image

from conftest import REPO, load_config
from dpfcn_jax import compare_lib, levelsets, maps, metrics
from dpfcn_jax.data import io
from dpfcn_jax.errors import ConfigError

# The synthetic compare config shrunk to seconds: one ~100 px scene per split, 2 steps.
TINY = ('--config.model.width=4', '--config.model.depth=2', '--config.data.tile=32',
        '--config.infer.stride=24', '--config.batch_size=2',
        '--config.data.synthetic.min_side=96', '--config.data.synthetic.max_side=112',
        '--config.data.synthetic.num_scenes.train=1', '--config.data.synthetic.num_scenes.val=1',
        '--config.data.synthetic.num_scenes.test=1', '--config.num_train_steps=2',
        '--config.log_every_steps=1', '--config.eval_every_steps=0',
        '--config.checkpoint_every_steps=2')


def run_cli(workdir, *flags):
  cmd = [sys.executable, '-m', 'dpfcn_jax.compare', '--config=configs/compare_synthetic.py',
         f'--workdir={workdir}', '--split=test', *TINY, *flags]
  proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


def read_csv(path):
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


@pytest.fixture(scope='module')
def compared(tmp_path_factory):
  """One CLI run of all eight methods at tiny sizes."""
  workdir = tmp_path_factory.mktemp('compare')
  run_cli(workdir)
  return workdir


def test_cli_writes_every_method_table_and_figure(compared):
  out = compared / 'compare' / 'test'
  rows = read_csv(out / 'table.csv')
  methods = list(compare_lib.LABELS)
  assert [(r['site'], r['method']) for r in rows] == (
      [('test-00', m) for m in methods] + [('pooled', m) for m in methods])
  for r in rows:
    counts = [int(r[k]) for k in ('tp', 'fp', 'fn', 'tn')]
    expected = metrics.scores(*counts)
    assert all(float(r[k]) == pytest.approx(expected[k], abs=1e-6) for k in compare_lib.KEYS)
  table = (out / 'table.md').read_text().splitlines()
  assert table[0].startswith('| Site | Method | CP | CR | QA | OA | AA | F1 |')
  assert len(table) == 2 + len(rows)
  assert any(line.startswith('| pooled | DP-FCN |') for line in table)
  assert sorted(p.name for p in out.glob('*.png')) == ['figure_test-00.png']
  assert not list((compared / 'compare').glob('.*'))  # no scratch folder left behind
  for m in compare_lib.DEEP:
    assert (compared / m / 'checkpoints').is_dir()


def test_existing_checkpoint_is_reused(compared):
  jsonl = compared / 'dpfcn' / 'metrics.jsonl'
  before = jsonl.read_bytes()
  steps = sorted(os.listdir(compared / 'dpfcn' / 'checkpoints'))
  first = {(r['site'], r['method']): r
           for r in read_csv(compared / 'compare' / 'test' / 'table.csv')}
  run_cli(compared, '--config.compare.methods=dpfcn,cmi_otsu')
  assert jsonl.read_bytes() == before  # no training step was logged
  assert sorted(os.listdir(compared / 'dpfcn' / 'checkpoints')) == steps
  rows = read_csv(compared / 'compare' / 'test' / 'table.csv')
  assert [r['method'] for r in rows] == ['cmi_otsu', 'dpfcn'] * 2
  assert all(r == first[r['site'], r['method']] for r in rows)  # same checkpoint, same maps


def test_ensure_trained_trains_resumes_or_reuses(monkeypatch, tiny_config):
  calls = []
  monkeypatch.setattr(compare_lib.train_lib, 'train_and_evaluate',
                      lambda config, workdir: calls.append(workdir))
  for latest, trains in ((None, True), (2, True), (4, False), (9, False)):
    monkeypatch.setattr(compare_lib, '_latest_step', lambda _, s=latest: s)
    calls.clear()
    info = compare_lib.ensure_trained(tiny_config, 'W/dpfcn')  # 4 steps
    assert info['trained'] is trains and calls == (['W/dpfcn'] if trains else [])


def test_levelset_section_holds_every_default():
  section = load_config('default').levelset.to_dict()
  defaults = levelsets.default_params()
  assert section == defaults
  for name, params in defaults.items():
    for key, value in params.items():
      assert type(section[name][key]) is type(value), (name, key)
  # Every method is either a level set reading known sections or a network.
  assert set(compare_lib.LEVELSET_SECTIONS) == set(levelsets.METHODS)
  assert set(compare_lib.LEVELSET_SECTIONS) | set(compare_lib.DEEP) == set(compare_lib.LABELS)
  assert {s for v in compare_lib.LEVELSET_SECTIONS.values() for s in v} == set(defaults)


def test_parse_methods_keeps_table_order():
  assert compare_lib.parse_methods('dpfcn, ELSE,rlse') == ('else', 'rlse', 'dpfcn')
  assert compare_lib.parse_methods(load_config('compare_synthetic').compare.methods) == tuple(
      compare_lib.LABELS)
  for bad in ('', 'else,snake', ' , '):
    with pytest.raises(ConfigError):
      compare_lib.parse_methods(bad)


def test_method_configs_carry_the_paper_settings():
  for name in ('compare_synthetic', 'compare_airchange'):
    base = load_config(name)
    base.lock()
    keep = {m: compare_lib.method_config(base, m).model.keep_prob for m in compare_lib.DEEP}
    assert keep == {'fcn': 0.5, 'unet': 0.6, 'fcnpp': 0.6, 'dpfcn': base.model.keep_prob}
    for m in compare_lib.DEEP:
      cfg = compare_lib.method_config(base, m)
      assert cfg.model.name == m and cfg.learning_rate == base.learning_rate
    assert base.model.name == 'dpfcn' and base.model.keep_prob not in (0.5, 0.6)


def test_override_copies_keeps_references_and_rejects_unknown_fields():
  base = load_config('compare_synthetic')
  cfg = compare_lib.override(base, {'data': {'tile': 32}, 'seed': 3})
  assert (cfg.data.tile, cfg.infer.tile, cfg.seed) == (32, 32, 3)
  assert (base.data.tile, base.infer.tile, base.seed) == (128, 128, 0)
  with pytest.raises(ConfigError, match='model.colour'):
    compare_lib.override(base, {'model': {'colour': 1}})
  with pytest.raises(ConfigError):
    compare_lib.override(base, {'model': {'width': 'wide'}})
  base.compare.deep = ml_collections.ConfigDict({'fcn': {}})
  with pytest.raises(ConfigError):
    compare_lib.method_config(base, 'unet')


def _site(name, mask):
  h, w = mask.shape
  rng = np.random.default_rng(0)
  return io.Site(name, rng.random((h, w, 3), np.float32), rng.random((h, w, 3), np.float32),
                 mask.astype(np.uint8), np.ones((h, w), bool), None)


def test_scores_markdown_and_csv(tmp_path):
  mask = np.zeros((6, 8), bool)
  mask[:3, :4] = True
  sites = [_site('a', mask), _site('b', ~mask)]
  preds = {'else': {'a': mask, 'b': mask}, 'dpfcn': {'a': mask, 'b': ~mask}}
  reports = compare_lib.score(preds, sites, ('else', 'dpfcn'))
  assert list(reports) == ['a', 'b', 'pooled']
  assert reports['b']['else']['qa'] == 0.0 and reports['b']['dpfcn']['qa'] == 1.0
  assert reports['pooled']['else']['tp'] == 12 and reports['pooled']['else']['fp'] == 12
  md = compare_lib.format_markdown(reports).splitlines()
  assert md[2] == '| a | ELSE | 100.00 | 100.00 | 100.00 | 100.00 | 100.00 | 100.00 |'
  assert md[-2].startswith('| pooled | ELSE | 25.00 | 50.00 | 20.00 |')  # 12 TP, 12 FP, 36 FN
  compare_lib.write_csv(tmp_path / 't.csv', reports)
  rows = read_csv(tmp_path / 't.csv')
  assert [(r['site'], r['method']) for r in rows][-2:] == [('pooled', 'else'),
                                                          ('pooled', 'dpfcn')]
  assert float(rows[-2]['qa']) == pytest.approx(0.2) and rows[-2]['fn'] == '36'


def test_figure_holds_labelled_error_maps():
  mask = np.zeros((40, 60), bool)
  mask[10:30, 20:40] = True
  site = _site('s', mask)
  missed = np.zeros_like(mask)
  preds = {'rlse': {'s': missed}, 'unet': {'s': mask}}
  img = compare_lib.figure(site, preds, ('rlse', 'unet'), panel_px=30, columns=2)
  # pre, post, two maps, reference: 3 rows of 2 panels at half scale, plus the legend.
  assert img.width == 2 * (30 + 2 * compare_lib.PAD)
  arr = np.asarray(img)
  colours = {tuple(c) for c in arr.reshape(-1, 3)}
  assert maps.COLOURS['fn'] in colours  # RLSE missed the whole change
  big = compare_lib.figure(site, preds, ('rlse', 'unet'), panel_px=600, columns=5)
  assert isinstance(big, Image.Image) and big.width == 5 * (60 + 2 * compare_lib.PAD)
