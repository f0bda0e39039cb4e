"""Cross-validation: folds of whole sites, resume after a kill, pooled scores, the command."""
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, load_config, tiny
from dpfcn_jax import crossval_lib, crossval_report, folds, line_plot, metrics, train_lib
from dpfcn_jax.data import pipeline
from dpfcn_jax.errors import ConfigError, InputError

REGION = r'(.*)-'  # configs/airchange.py's data.site_group
AIRCHANGE = ([f'train/szada-{i}' for i in (2, 3, 4, 5, 6)]
             + [f'train/tiszadob-{i}' for i in (1, 2, 5)] + ['val/szada-7', 'val/tiszadob-4'])
TINY = ['--config.model.width=4', '--config.model.jfl_width=4', '--config.model.depth=2',
        '--config.data.tile=32', '--config.infer.stride=24', '--config.batch_size=4',
        '--config.data.synthetic.min_side=96', '--config.data.synthetic.max_side=128',
        '--config.data.synthetic.num_scenes.train=2', '--config.data.synthetic.num_scenes.val=1',
        '--config.num_train_steps=4', '--config.log_every_steps=2',
        '--config.eval_every_steps=2', '--config.checkpoint_every_steps=2']


@pytest.mark.parametrize('num_folds', [2, 3, 4])
def test_folds_partition_the_sites_and_each_holds_out_both_regions(num_folds):
  plan = folds.plan(AIRCHANGE, num_folds, 0, REGION)
  dealt = [s for f in plan for s in f]
  assert sorted(dealt) == sorted(AIRCHANGE)  # every site, none in two folds
  assert max(map(len, plan)) - min(map(len, plan)) <= 1
  for f in plan:
    assert {folds.site_group(s, REGION) for s in f} == {'szada', 'tiszadob'}
  assert folds.plan(AIRCHANGE, num_folds, 0, REGION) == plan
  assert folds.plan(AIRCHANGE, num_folds, 1, REGION) != plan


def test_bad_fold_counts_and_unmatched_groups_are_refused():
  with pytest.raises(ConfigError, match='--folds=11'):
    folds.plan(AIRCHANGE, 11, 0)
  with pytest.raises(ConfigError, match="site_group 'x' does not match site 'szada-2'"):
    folds.plan(AIRCHANGE, 2, 0, 'x')
  with pytest.raises(ConfigError, match=r"site_group '\(' is not a regular expression"):
    folds.plan(AIRCHANGE, 2, 0, '(')


def test_labelled_sites_are_train_val_and_extra_and_never_test(tmp_path):
  for split, name in [('train', 'a-1'), ('train', 'b-1'), ('val', 'a-2'), ('extra', 'c-1'),
                      ('test', 'a-3')]:
    (tmp_path / split / name).mkdir(parents=True)
  c = load_config('default')
  c.data.root, c.data.extra_sites = str(tmp_path), ('extra/c-1',)
  assert folds.labelled_sites(c.data) == ['train/a-1', 'train/b-1', 'val/a-2', 'extra/c-1']
  c.data.val_sites = ('test/a-3',)
  with pytest.raises(ConfigError, match=r"\['test/a-3'\] are also train"):
    folds.labelled_sites(c.data)
  c.data.val_sites = ('val/a-9',)
  with pytest.raises(InputError, match='val/a-9: site folder not found'):
    folds.labelled_sites(c.data)


def test_a_fold_trains_on_the_other_folds_and_validates_on_its_own(tiny_config):
  tiny_config.data.synthetic.num_scenes.val = 2
  sites = folds.labelled_sites(tiny_config.data)
  assert sites == ['train-00', 'train-01', 'val-00', 'val-01']
  plan = folds.plan(sites, 2, 0, REGION)
  c = folds.fold_config(tiny_config, plan, 1, 7)
  assert set(c.data.train_sites) == set(plan[0]) and c.data.val_sites == tuple(plan[1])
  assert (c.seed, c.select_best) == (7, '')
  val = pipeline.load_split(c.data, 'val')
  assert [s.name for s in val] == plan[1]
  whole = {s.name: s for s in pipeline.load_split(tiny_config.data, 'train')
           + pipeline.load_split(tiny_config.data, 'val')}
  for s in val:  # a listed scene is the scene its own split generates
    np.testing.assert_array_equal(s.post, whole[s.name].post)
  c.data.val_sites = ('val-05',)
  with pytest.raises(ConfigError, match="data.val_sites: 'val-05' is not a synthetic scene"):
    pipeline.load_split(c.data, 'val')


def test_train_only_sites_train_every_fold_and_are_held_out_by_none(tiny_config):
  tiny_config.data.synthetic.num_scenes.val = 2
  tiny_config.data.train_only_sites = ('val-01',)
  sites = folds.labelled_sites(tiny_config.data)
  assert sites == ['train-00', 'train-01', 'val-00']  # the folds of before, less it
  plan = folds.plan(sites, 3, 0)
  for k in range(3):
    c = folds.fold_config(tiny_config, plan, k, 0)
    assert 'val-01' in c.data.train_sites and 'val-01' not in c.data.val_sites
  final = folds.final_overrides(tiny_config, sites, 4)
  assert final['data.train_sites'] == ('train-00', 'train-01', 'val-00', 'val-01')
  tiny_config.data.test_sites = ('val-01',)
  with pytest.raises(ConfigError, match=r"\['val-01'\] are also train"):
    folds.labelled_sites(tiny_config.data)


def test_per_group_folds_train_one_model_per_group_on_that_group_s_sites(tiny_config):
  tiny_config.data.synthetic.num_scenes.val = 2
  plan = folds.plan(folds.labelled_sites(tiny_config.data), 2, 0, REGION)
  for k in range(2):
    configs = folds.group_configs(folds.fold_config(tiny_config, plan, k, 0), REGION)
    assert sorted(configs) == ['train', 'val']
    for group, c in configs.items():
      assert c.data.val_sites == tuple(s for s in plan[k] if s.startswith(group))
      assert c.data.train_sites == tuple(s for s in plan[1 - k] if s.startswith(group))
  tiny_config.data.synthetic.num_scenes.val = 1  # val-00 alone: held out, nothing trains
  plan = folds.plan(folds.labelled_sites(tiny_config.data), 2, 0, REGION)
  k = next(k for k, f in enumerate(plan) if 'val-00' in f)
  with pytest.raises(ConfigError, match="every site of group 'val' is held out together"):
    folds.group_configs(folds.fold_config(tiny_config, plan, k, 0), REGION)


def test_a_per_group_crossval_pools_every_group_s_model_over_every_site(tmp_path):
  c = _cv_config()
  c.data.synthetic.num_scenes.val = 2
  c.crossval.per_group = True
  report = crossval_lib.run(c, str(tmp_path), 2)
  runs = sorted(str(p.parent.relative_to(tmp_path)) for p in tmp_path.glob('**/fold.json'))
  assert runs == [f'fold-{k}/seed-0/group-{g}' for k in range(2) for g in ('train', 'val')]
  summed = {}
  for run in runs:
    saved = json.loads((tmp_path / run / 'config.json').read_text())['data']
    group = run.rsplit('-', 1)[1]
    assert all(s.startswith(group) for s in saved['train_sites'] + saved['val_sites'])
    for name, counts in crossval_lib.held_out_counts(tmp_path / run, [4])[4].items():
      summed[name] = counts
  assert sorted(summed) == ['train-00', 'train-01', 'val-00', 'val-01']
  assert report['pooled'][-1] == metrics.pooled(list(summed.values()))
  final = report['final_model']
  assert final.count('python -m dpfcn_jax.train') == 2 and 'final-train' in final
  assert "\"--config.data.train_sites=('val-00', 'val-01')\"" in final


def test_folds_score_at_crossval_steps_and_final_overrides_skip_what_the_config_holds(
    tiny_config):
  tiny_config.num_train_steps, tiny_config.eval_every_steps = 10, 0
  with pytest.raises(ConfigError, match='crossval.eval_every_steps'):
    crossval_lib.eval_steps(tiny_config)
  tiny_config.crossval.eval_every_steps = 4
  assert crossval_lib.eval_steps(tiny_config) == [4, 8, 10]
  plan = folds.plan(folds.labelled_sites(tiny_config.data), 2, 0)
  assert folds.fold_config(tiny_config, plan, 0, 0).eval_every_steps == 4
  # A config that already is its final model (configs/airchange.py) needs no overrides
  # but the length cross-validation chose.
  sites = folds.labelled_sites(tiny_config.data)
  tiny_config.data.train_sites, tiny_config.data.val_sites = tuple(sites), ()
  assert folds.final_overrides(tiny_config, sites, 8) == {'num_train_steps': 8}


def test_pooled_scores_are_the_scores_of_summed_counts():
  rng = np.random.default_rng(0)
  plan, seeds, steps = [['a', 'b'], ['c']], [0, 1], [10, 20]
  counts = {(k, s): {t: {n: tuple(int(x) for x in rng.integers(1, 10**(2 + i), 4))
                         for i, n in enumerate(names)} for t in steps}
            for k, names in enumerate(plan) for s in seeds}
  report = crossval_report.summarise(plan, seeds, steps, counts)
  for i, t in enumerate(steps):
    summed = np.sum([counts[k, s][t][n] for k, names in enumerate(plan) for n in names
                     for s in seeds], axis=0)
    assert report['pooled'][i] == metrics.site_report(*(int(x) for x in summed))
    site_c = np.sum([counts[1, s][t]['c'] for s in seeds], axis=0)
    assert report['sites']['c'][i]['f1'] == metrics.scores(*site_c)['f1']
    fold_f1 = [metrics.pooled([counts[k, s][t][n] for n in names])['f1']
               for s in seeds for k, names in enumerate(plan)]
    assert report['mean'][i]['f1'] == pytest.approx(np.mean(fold_f1))
    assert report['sd'][i]['f1'] == pytest.approx(np.std(fold_f1, ddof=1))
    assert report['pooled'][i]['f1'] != pytest.approx(report['mean'][i]['f1'])
  best = int(np.argmax([p['f1'] for p in report['pooled']]))
  assert report['chosen_step'] == steps[best] and report['last_step'] == 20
  md = crossval_report.markdown(report)
  f1 = report['pooled_by_seed']['1'][1]['f1']
  assert 'Pooled F1 per seed at step 20: seed 0 ' in md and f'seed 1 {100 * f1:.2f}' in md


def _cv_config():
  c = tiny()
  c.eval_every_steps = 2
  c.data.site_group = REGION
  return c


@pytest.fixture(scope='module')
def straight(tmp_path_factory):
  """An uninterrupted 2-fold cross-validation in one process: (workdir, report)."""
  w = tmp_path_factory.mktemp('straight')
  return w, crossval_lib.run(_cv_config(), str(w), 2)


def _without_command(report):
  return {k: v for k, v in report.items() if k != 'final_model'}


def _md(workdir):
  return (workdir / 'crossval.md').read_text().replace(str(workdir), 'W')


def test_a_killed_crossval_resumes_to_the_table_of_an_uninterrupted_one(
    straight, tmp_path, monkeypatch):
  tiny_config = _cv_config()
  straight_dir, straight = straight
  validations = []
  evaluate_sites = train_lib.eval_lib.evaluate_sites

  def killed_in_second_fold(*args, **kwargs):
    validations.append(1)
    if len(validations) == 1:  # fold 1's validation at step 2: as a pre-emption would
      signal.raise_signal(signal.SIGTERM)
    return evaluate_sites(*args, **kwargs)

  trained = []
  train_and_evaluate = train_lib.train_and_evaluate

  def recorded(config, workdir):
    trained.append(os.path.relpath(workdir, tmp_path))
    return train_and_evaluate(config, workdir)

  monkeypatch.setattr(train_lib.eval_lib, 'evaluate_sites', killed_in_second_fold)
  monkeypatch.setattr(train_lib, 'train_and_evaluate', recorded)
  w = tmp_path / 'b'
  shutil.copytree(straight_dir / 'fold-0', w / 'fold-0')  # a fold finished before the kill
  assert crossval_lib.run(tiny_config, str(w), 2) is None
  assert not (w / 'crossval.json').exists() and not (w / 'fold-1/seed-0/fold.json').exists()
  resumed = crossval_lib.run(tiny_config, str(w), 2)
  assert trained == ['b/fold-1/seed-0'] * 2  # the finished fold is not trained again
  log = [json.loads(l) for l in (w / 'fold-1/seed-0/metrics.jsonl').read_text().splitlines()]
  assert [r['step'] for r in log if 'loss' in r] == [2, 4]  # from its checkpoint, not step 0
  assert _without_command(resumed) == _without_command(straight)
  assert _md(w) == _md(straight_dir)


def test_parts_train_disjoint_runs_and_then_report_as_one_process(
    straight, tmp_path, monkeypatch):
  straight_dir, straight = straight
  trained = []
  train_and_evaluate = train_lib.train_and_evaluate

  def recorded(config, workdir):
    trained.append(os.path.relpath(workdir, tmp_path))
    return train_and_evaluate(config, workdir)

  monkeypatch.setattr(train_lib, 'train_and_evaluate', recorded)
  for part in ((1, 2), (0, 2)):
    assert crossval_lib.run(_cv_config(), str(tmp_path), 2, part=part) is None
    assert not (tmp_path / 'crossval.json').exists()
  assert trained == ['fold-1/seed-0', 'fold-0/seed-0']
  report = crossval_lib.run(_cv_config(), str(tmp_path), 2)
  assert len(trained) == 2  # the report's run finds every run trained
  assert _without_command(report) == _without_command(straight)
  assert _md(tmp_path) == _md(straight_dir)


@pytest.mark.parametrize('text', ['2/2', '1', 'a/b', '-1/2', '0/0'])
def test_a_bad_part_is_refused(text):
  with pytest.raises(ConfigError, match=f'--part={text}: expected I/N'):
    crossval_lib.parse_part(text)
  assert crossval_lib.parse_part('') is None and crossval_lib.parse_part('1/3') == (1, 3)


def test_a_fold_trained_with_another_config_is_refused(tiny_config, tmp_path):
  plan = folds.plan(folds.labelled_sites(tiny_config.data), 2, 0)
  other = folds.fold_config(tiny_config, plan, 0, 0)
  other.learning_rate = 1.0
  (tmp_path / 'fold-0/seed-0').mkdir(parents=True)
  (tmp_path / 'fold-0/seed-0/config.json').write_text(other.to_json_best_effort())
  with pytest.raises(ConfigError, match='other values of learning_rate'):
    crossval_lib.run(tiny_config, str(tmp_path), 2)


def _run(*args):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  r = subprocess.run([sys.executable, '-m', *args], cwd=REPO, env=env, capture_output=True,
                     text=True, timeout=300)
  assert r.returncode == 0, r.stderr[-3000:]
  return r


def test_command_writes_json_md_png_and_a_final_model_command_that_runs(tmp_path):
  w = tmp_path / 'cv'
  r = _run('dpfcn_jax.crossval', '--config=configs/synthetic.py', f'--workdir={w}',
           '--folds=2', *TINY)
  assert '(best pooled F1)' in r.stdout and '(last)' in r.stdout
  report = json.loads((w / 'crossval.json').read_text())
  assert report['steps'] == [2, 4] and sorted(sum(report['folds'], [])) == [
      'train-00', 'train-01', 'val-00']
  for i, t in enumerate(report['steps']):  # the headline, from the folds' own records
    summed = np.zeros(4, int)
    for k in range(2):
      for line in (w / f'fold-{k}/seed-0/metrics.jsonl').read_text().splitlines():
        record = json.loads(line)
        if record['step'] == t and 'val_counts' in record:
          summed += np.sum([[c[key] for key in metrics.COUNTS]
                            for c in record['val_counts'].values()], axis=0)
    assert report['pooled'][i] == metrics.site_report(*(int(x) for x in summed))
  with Image.open(w / 'crossval_f1.png') as png:
    assert png.size == (640, 400)
    assert line_plot.COLOURS[0] in {c for _, c in png.convert('RGB').getcolors(1 << 20)}
  md = (w / 'crossval.md').read_text()
  assert md.count('(best pooled F1)') == 1 and md.count('(last)') == 1
  command = [l.strip() for l in md.splitlines() if 'dpfcn_jax.train' in l]
  assert len(command) == 1
  _, _, module, *args = shlex.split(command[0])
  _run(module, *args)
  final = w / 'final'
  saved = json.loads((final / 'config.json').read_text())
  assert saved['data']['train_sites'] == ['train-00', 'train-01', 'val-00']
  assert (saved['eval_every_steps'], saved['model']['width']) == (0, 4)
  assert max(int(p.name) for p in (final / 'checkpoints').iterdir()) == report['chosen_step']
