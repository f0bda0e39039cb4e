"""Cross-validation: one training run per (fold, seed) and the report over all of them.

WORKDIR/fold-K/seed-S is an ordinary training workdir (checkpoints, metrics.jsonl whose
val records carry each held-out site's confusion counts); its fold.json marks it
finished, so a rerun skips it, and a fold killed half-way resumes from its newest
checkpoint (with crossval.per_group, one such workdir per site group under it,
WORKDIR/fold-K/seed-S/group-G). WORKDIR/crossval.{json,md} and crossval_f1.png come
once every run is done.
Several processes share one WORKDIR, as they share checkpoints; process 0 writes.
"""
import json
import logging
import os
import shlex

import jax

from dpfcn_jax import crossval_report, folds, line_plot, metrics, train_lib
from dpfcn_jax.errors import ConfigError, InputError

MARKER = 'fold.json'

log = logging.getLogger(__name__)


def eval_steps(config):
  """The steps folds score their held-out sites at: every folds.every_steps, and the last."""
  every = folds.every_steps(config)
  if every <= 0 or config.num_train_steps <= 0:
    raise ConfigError('cross-validation scores the held-out sites at the eval steps: '
                      'crossval.eval_every_steps (or eval_every_steps) and num_train_steps '
                      'must be positive')
  return sorted({*range(every, config.num_train_steps + 1, every), config.num_train_steps})


def parse_part(text):
  """'I/N' -> (I, N); '' -> None, the whole cross-validation in this process."""
  if not text:
    return None
  try:
    index, count = (int(x) for x in text.split('/'))
  except ValueError:
    index, count = -1, 0
  if not 0 <= index < count:
    raise ConfigError(f'--part={text}: expected I/N with 0 <= I < N, e.g. 0/4')
  return index, count


def run(config, workdir, num_folds=5, num_seeds=1, config_file='CONFIG', overrides=None,
        part=None):
  """Trains what is not yet trained, then writes the report; returns it (None if stopped).

  Seed s trains with config.seed + s on the folds that config.seed and num_folds deal.
  `overrides` (the user's --config.* values) and `config_file` go into the printed
  final-model command. A run stopped by SIGTERM stops the whole cross-validation.
  With `part` (train_runs), this process writes no report (None): a run without `part`
  writes it once every part is done.
  """
  if not train_runs(config, workdir, num_folds, num_seeds, part):
    return None
  if part:
    log.info('part %d/%d of %s trained; run without --part for the report', *part, workdir)
    return None
  steps = eval_steps(config)
  sites = folds.labelled_sites(config.data)
  plan = folds.plan(sites, num_folds, config.seed, config.data.site_group)
  seeds = [config.seed + s for s in range(num_seeds)]
  counts = {}
  for run_dir, k, seed, _ in _runs(config, workdir, num_folds, num_seeds):
    counts.setdefault((k, seed), {t: {} for t in steps})
    for t, by_site in held_out_counts(run_dir, steps).items():
      counts[k, seed][t].update(by_site)
  names = [[folds.site_name(x) for x in f] for f in plan]
  report = crossval_report.summarise(names, seeds, steps, counts)
  report['final_model'] = final_model(config, sites, report, workdir, config_file,
                                      overrides or {})
  if jax.process_index() == 0:
    write(report, workdir)
  return report


def train_runs(config, workdir, num_folds, num_seeds, part=None):
  """Trains the (seed, fold) runs not yet finished; False if a signal stopped one.

  With `part` = (I, N), only runs I, I + N, ... in (seed, fold) order: N processes
  share the devices (one card runs several width-12 folds at once) or a cluster's jobs.
  """
  for i, (run_dir, k, seed, run_config) in enumerate(
      _runs(config, workdir, num_folds, num_seeds)):
    _check_same_config(run_dir, run_config)
    if finished(run_dir) or (part and i % part[1] != part[0]):
      continue
    held_out = run_config.data.val_sites
    log.info('training %s (seed %d), holding out %s', run_dir, seed, ', '.join(held_out))
    state = train_lib.train_and_evaluate(run_config, run_dir)
    if int(jax.device_get(state.step)) < config.num_train_steps:
      log.warning('%s stopped before its last step: run again to resume', run_dir)
      return False
    if jax.process_index() == 0:
      write_json(os.path.join(run_dir, MARKER), {'fold': k, 'seed': seed,
                                                 'val_sites': list(held_out)})
  return True


def _runs(config, workdir, num_folds, num_seeds):
  """(run_dir, fold, seed, config) of every training run, in (seed, fold) order; with
  crossval.per_group, one run per site group of the fold's held-out sites."""
  if num_seeds < 1:
    raise ConfigError(f'--seeds={num_seeds}: expected 1 or more')
  eval_steps(config)
  rule = config.data.site_group
  plan = folds.plan(folds.labelled_sites(config.data), num_folds, config.seed, rule)
  for s in range(num_seeds):
    for k in range(num_folds):
      fold_config = folds.fold_config(config, plan, k, config.seed + s)
      if not config.crossval.per_group:
        yield fold_dir(workdir, k, s), k, config.seed + s, fold_config
        continue
      for group, group_config in folds.group_configs(fold_config, rule).items():
        yield (os.path.join(fold_dir(workdir, k, s), f'group-{group or "all"}'), k,
               config.seed + s, group_config)


def fold_dir(workdir, fold, seed_index):
  return os.path.join(workdir, f'fold-{fold}', f'seed-{seed_index}')


def finished(fold_dir):
  return os.path.exists(os.path.join(fold_dir, MARKER))


def held_out_counts(fold_dir, steps):
  """{step: {site: (tp, fp, fn, tn)}} from the fold's val records; a step validated
  twice (after a resume) counts by its last record."""
  path = os.path.join(fold_dir, 'metrics.jsonl')
  if not os.path.exists(path):
    raise InputError(f'{path}: not found; delete {fold_dir} to train the fold again')
  with open(path) as f:
    lines = f.read().splitlines(keepends=True)
  by_step = {}
  for line in lines:
    if line.endswith('\n'):  # a line cut short by a kill is no record
      record = json.loads(line)
      if 'val_counts' in record:
        by_step[record['step']] = {n: tuple(c[key] for key in metrics.COUNTS)
                                   for n, c in record['val_counts'].items()}
  missing = [t for t in steps if t not in by_step]
  if missing:
    raise InputError(f'{path}: no held-out counts at steps {missing}; delete {fold_dir} '
                     'to train the fold again')
  return {t: by_step[t] for t in steps}


def _check_same_config(fold_dir, fold_config):
  """A workdir trained with another config (or other folds) would mix two experiments.

  Fields the saved config lacks were added to the code since: new options default to
  the behaviour before them, so a fold trained then still counts.
  """
  path = os.path.join(fold_dir, 'config.json')
  if not os.path.exists(path):
    return
  with open(path) as f:
    saved = flatten(json.load(f))
  wanted = flatten(json.loads(fold_config.to_json_best_effort()))
  differ = sorted(k for k in saved if saved[k] != wanted.get(k))
  if differ:
    raise ConfigError(f'{path}: this fold was trained with other values of {", ".join(differ)}'
                      ': use another --workdir, or the config it was trained with')


def flatten(tree, prefix=''):
  """{'a.b': leaf} of a nested dict."""
  if not isinstance(tree, dict):
    return {prefix[:-1]: tree}
  return {k: v for key, sub in tree.items() for k, v in flatten(sub, f'{prefix}{key}.').items()}


def final_model(config, sites, report, workdir, config_file, overrides):
  """The final model: every labelled site for the chosen step count, taken at its last
  step, with no selection on val (with crossval.per_group, one model per site group on
  that group's sites). Returns its commands and, where the learning-rate schedule
  depends on the length, a caveat."""
  chosen = report['chosen_step']
  groups = {'': sites}
  if config.crossval.per_group:
    rule = config.data.site_group
    groups = {}
    for s in sites:
      groups.setdefault(folds.site_group(s, rule), []).append(s)
  commands = []
  for group, group_sites in sorted(groups.items()):
    values = {**overrides, **folds.final_overrides(config, group_sites, chosen)}
    name = f'final-{group}' if config.crossval.per_group else 'final'
    commands.append(' '.join(
        ['python -m dpfcn_jax.train', _quote(f'--config={config_file}'),
         _quote(f'--workdir={os.path.join(workdir, name)}')]
        + [_quote(f'--config.{k}={_flag_value(v)}') for k, v in values.items()]))
  if config.crossval.per_group:
    text = (f'One model per site group, each trained on its group\'s labelled sites to step '
            f'{chosen} and taken there; map a scene with its group\'s model:\n\n')
  else:
    text = f'Trained on every labelled site to step {chosen} and taken there:\n\n'
  text += ''.join(f'    {c}\n' for c in commands)
  if chosen != config.num_train_steps and config.lr_schedule != 'constant':
    text += (f'\nStep {chosen} was scored inside a {config.lr_schedule} schedule of '
             f'{config.num_train_steps} steps; a run of {chosen} steps decays its learning '
             f'rate sooner: cross-validate again with --config.num_train_steps={chosen} '
             'first.\n')
  return text


def _flag_value(value):
  return value if isinstance(value, str) else repr(value)


def _quote(arg):
  """Shell quoting that keeps a tuple of quoted site names readable."""
  if shlex.quote(arg) == arg or any(ch in arg for ch in '"$`\\!'):
    return shlex.quote(arg)
  return f'"{arg}"'


def write(report, workdir):
  os.makedirs(workdir, exist_ok=True)
  write_json(os.path.join(workdir, 'crossval.json'), report)
  text = crossval_report.markdown(report, report['final_model'])
  with open(os.path.join(workdir, 'crossval.md'), 'w') as f:
    f.write(text)
  series = {'pooled': [p['f1'] for p in report['pooled']]}
  if len(report['seeds']) > 1:
    series.update({f'seed {s}': [p['f1'] for p in by_step]
                   for s, by_step in report['pooled_by_seed'].items()})
  line_plot.save(os.path.join(workdir, 'crossval_f1.png'), report['steps'], series,
                 f'F1 pooled over {len(report["folds"])} held-out folds', 'training step',
                 'F1 (%)')
  headline = text.split('\n## ')[0]
  print(f'{headline}\n{report["final_model"]}\nreport in {workdir}/crossval.md', flush=True)


def write_json(path, value):
  """Written whole or not at all: a marker or report cut short by a kill would lie."""
  scratch = f'{path}.partial'
  with open(scratch, 'w') as f:
    json.dump(value, f, indent=2)
  os.replace(scratch, path)
