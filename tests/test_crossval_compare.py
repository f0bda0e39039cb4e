"""Every method of Table IV through the cross-validation harness, and one table over runs."""
import json
import os

import ml_collections
import numpy as np
import pytest

from dpfcn_jax import crossval_compare, crossval_report, levelsets, metrics, train_lib
from dpfcn_jax.data import pipeline
from dpfcn_jax.errors import ConfigError, InputError

METHODS = 'cmi_otsu,fcn,unet,fcnpp,dpfcn'
LABELS = ['CMI+Otsu', 'FCN', 'U-Net', 'FCN-PP', 'DP-FCN']


@pytest.fixture
def compare_config(tiny_config):
  assert 'compare' in tiny_config  # every config carries configs/default.py's section
  tiny_config.num_train_steps, tiny_config.eval_every_steps = 2, 2
  return tiny_config


def test_every_method_runs_on_the_same_folds_into_one_table(compare_config, tmp_path,
                                                           monkeypatch):
  reports = crossval_compare.run(compare_config, str(tmp_path), METHODS, 2, 1, 'C')
  table = json.loads((tmp_path / 'comparison.json').read_text())
  assert list(table['rows']) == LABELS
  assert all(r['folds'] == table['folds'] for r in reports.values())
  for m in METHODS.split(','):  # each method's own report, on disk, on the same folds
    assert json.loads((tmp_path / m / 'crossval.json').read_text())['folds'] == table['folds']
  fcn = json.loads((tmp_path / 'fcn/fold-1/seed-0/config.json').read_text())
  assert (fcn['model']['name'], fcn['model']['keep_prob']) == ('fcn', 0.5)
  assert fcn['num_train_steps'] == 2
  assert '--config.model.name=fcn' in reports['fcn']['final_model']
  sites = pipeline.load_split(compare_config.data, 'train') + pipeline.load_split(
      compare_config.data, 'val')
  otsu = metrics.pooled([metrics.confusion(levelsets.run_method(
      'cmi_otsu', s.pre, s.post, compare_config.levelset), s.mask, s.valid) for s in sites])
  assert table['rows']['CMI+Otsu']['pooled'] == otsu  # pooled over folds = over all sites
  assert reports['dpfcn']['pooled'][-1] == table['rows']['DP-FCN']['pooled']
  md = (tmp_path / 'comparison.md').read_text()
  assert all(f'| {label} | ' in md for label in LABELS)

  def mapped_again(*args):
    raise AssertionError('a mapped fold is mapped again')

  monkeypatch.setattr(levelsets, 'run_method', mapped_again)
  again = crossval_compare.run(compare_config, str(tmp_path), 'cmi_otsu', 2, 1, 'C')
  assert again['cmi_otsu'] == reports['cmi_otsu']
  compare_config.levelset.cmi.histogram_match = True
  with pytest.raises(ConfigError, match='other sites or level-set settings'):
    crossval_compare.run(compare_config, str(tmp_path), 'cmi_otsu', 2, 1, 'C')


def test_parts_share_every_method_s_runs_and_folds_and_the_table_needs_no_more(
    compare_config, tmp_path, monkeypatch):
  done = []
  train, run_method = train_lib.train_and_evaluate, levelsets.run_method

  def recorded_train(config, workdir):
    done.append(('train', os.path.relpath(workdir, tmp_path)))
    return train(config, workdir)

  def recorded_map(method, *args):
    done.append(('map', method))
    return run_method(method, *args)

  monkeypatch.setattr(train_lib, 'train_and_evaluate', recorded_train)
  monkeypatch.setattr(levelsets, 'run_method', recorded_map)
  for part in ((0, 2), (1, 2)):
    assert crossval_compare.run(compare_config, str(tmp_path), 'cmi_otsu,fcn', 2, 1, 'C',
                                part=part) is None
    assert not (tmp_path / 'comparison.json').exists()
  trained = sorted(d for kind, d in done if kind == 'train')
  assert trained == ['fcn/fold-0/seed-0', 'fcn/fold-1/seed-0']
  assert sorted(os.listdir(tmp_path / 'cmi_otsu')) == ['fold-0', 'fold-1']
  before = len(done)
  crossval_compare.run(compare_config, str(tmp_path), 'cmi_otsu,fcn', 2, 1, 'C')
  assert len(done) == before  # every run and map was a part's
  assert list(json.loads((tmp_path / 'comparison.json').read_text())['rows']) == [
      'CMI+Otsu', 'FCN']


def test_a_config_without_networks_overrides_or_with_an_unknown_method_is_refused(tiny_config):
  bare = ml_collections.ConfigDict({k: v for k, v in tiny_config.items() if k != 'compare'})
  with pytest.raises(ConfigError, match='no compare section'):
    crossval_compare.run(bare, 'unused', 'fcn', 2)
  with pytest.raises(ConfigError, match="unknown \\['otsu'\\]"):
    crossval_compare.run(tiny_config, 'unused', 'otsu', 2)


def _report(rng, plan):
  steps = [5, 10]
  counts = {(k, 0): {t: {n: tuple(int(x) for x in rng.integers(1, 100, 4)) for n in names}
                     for t in steps} for k, names in enumerate(plan)}
  return crossval_report.summarise(plan, [0], steps, counts)


def test_collect_tables_rows_at_their_last_step_and_stars_rows_on_other_folds(tmp_path):
  rng = np.random.default_rng(0)
  reports = {'base': _report(rng, [['a'], ['b']]), 'ema': _report(rng, [['a'], ['b']]),
             'extra': _report(rng, [['a', 'c'], ['b']])}
  for name, r in reports.items():
    (tmp_path / name).mkdir()
    (tmp_path / name / 'crossval.json').write_text(json.dumps(r))
  crossval_compare.collect(str(tmp_path), list(reports))
  table = json.loads((tmp_path / 'rows.json').read_text())
  assert list(table['rows']) == ['base', 'ema', 'extra *']
  for name, row in zip(reports, table['rows'].values()):
    assert row['pooled'] == reports[name]['pooled'][1] and row['step'] == 10
    assert row['best_f1'] == max(p['f1'] for p in reports[name]['pooled'])
  assert 'Starred rows held out other folds' in (tmp_path / 'rows.md').read_text()
  with pytest.raises(InputError, match='missing/crossval.json: not found'):
    crossval_compare.collect(str(tmp_path), ['base', 'missing'])
