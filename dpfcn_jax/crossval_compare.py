"""The method comparison (Table IV) by cross-validation, and one table over several runs.

Every method is scored on the same folds, those the base config deals (its sites,
data.site_group, seed and the fold count), by the same Table II criteria of summed counts:

  * FCN, U-Net, FCN-PP, DP-FCN: crossval_lib cross-validates the base config with the
    method's compare.deep.<method> overrides (compare_lib.method_config), so every
    network trains on the same budget, in WORKDIR/<method>/fold-K/seed-S;
  * CMI + Otsu, ELSE, RLSE, LSELUC learn nothing from the sites: each fold's held-out
    sites are mapped once (WORKDIR/<method>/fold-K/counts.json) and scored at "step 0",
    so their pooled score is that over every labelled site.

WORKDIR/<method>/crossval.{json,md} are each method's report as for any config, and
WORKDIR/comparison.{json,md} holds one row per method. `collect` writes the same table
over any cross-validation workdirs, such as a list of recipe rows.
"""
import json
import logging
import os

import jax

from dpfcn_jax import compare_lib, crossval_lib, crossval_report, folds, levelsets, metrics
from dpfcn_jax.data import pipeline
from dpfcn_jax.errors import ConfigError, InputError

UNTRAINED_STEP = 0  # the one step at which a method that is not trained is scored
COUNTS_FILE = 'counts.json'

log = logging.getLogger(__name__)


def run(config, workdir, methods, num_folds=5, num_seeds=1, config_file='CONFIG',
        overrides=None, part=None):
  """Cross-validates every method of the comma-separated `methods`; writes and returns
  {method: report} (None if a training run was stopped: run again to resume). With
  `part` = (I, N) (crossval_lib.train_runs), trains this part's runs of every method,
  maps the folds k = I (mod N) of the untrained ones, and writes no report (None)."""
  methods = compare_lib.parse_methods(methods)
  if 'compare' not in config and set(methods) & set(compare_lib.DEEP):
    raise ConfigError('the config has no compare section (the networks\' overrides): use '
                      'configs/compare_*.py')
  plan = folds.plan(folds.labelled_sites(config.data), num_folds, config.seed,
                    config.data.site_group)
  reports = {}
  for m in methods:
    method_dir = os.path.join(workdir, m)
    if m in compare_lib.DEEP:
      cfg = _method_config(config, m, plan, num_folds)
      if part:
        if not crossval_lib.train_runs(cfg, method_dir, num_folds, num_seeds, part):
          return None
        continue
      # The final-model command trains this network, not the base config's.
      method_overrides = crossval_lib.flatten(config.compare.deep[m].to_dict())
      reports[m] = crossval_lib.run(cfg, method_dir, num_folds, num_seeds, config_file,
                                    {**(overrides or {}), **method_overrides})
      if reports[m] is None:
        return None
    else:
      reports[m] = untrained(config, method_dir, m, plan, part)
  if part:
    log.info('part %d/%d of %s done; run without --part for the table', *part, workdir)
    return None
  if jax.process_index() == 0:
    write(reports, workdir, 'comparison', 'method',
          {m: compare_lib.LABELS[m] for m in methods})
  return reports


def _method_config(config, method, plan, num_folds):
  cfg = compare_lib.method_config(config, method)
  if folds.plan(folds.labelled_sites(cfg.data), num_folds, cfg.seed,
                cfg.data.site_group) != plan:
    raise ConfigError(f'compare.deep.{method} changes the sites or the seed, so the folds: '
                      'every method must be scored on the same folds')
  return cfg


def untrained(config, method_dir, method, plan, part=None):
  """The cross-validation report of a threshold or level-set method on `plan`'s folds;
  with `part` = (I, N), maps folds I, I + N, ... only and returns None."""
  settings = {s: config.levelset[s].to_dict() for s in compare_lib.LEVELSET_SECTIONS[method]}
  counts = {}
  for k, held in enumerate(plan):
    if part and k % part[1] != part[0]:
      continue
    path = os.path.join(method_dir, f'fold-{k}', COUNTS_FILE)
    by_site = _saved_counts(path, held, settings)
    if by_site is None:
      log.info('%s: mapping fold %d (%s)', compare_lib.LABELS[method], k, ', '.join(held))
      sites = pipeline.load_split(folds.fold_config(config, plan, k, config.seed).data, 'val')
      by_site = {s.name: metrics.confusion(
          levelsets.run_method(method, s.pre, s.post, config.levelset), s.mask, s.valid)
                 for s in sites}
      if jax.process_index() == 0:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        crossval_lib.write_json(path, {'val_sites': held, 'levelset': settings,
                                       'counts': by_site})
    counts[k, config.seed] = {UNTRAINED_STEP: {n: tuple(c) for n, c in by_site.items()}}
  if part:
    return None
  names = [[folds.site_name(s) for s in f] for f in plan]
  report = crossval_report.summarise(names, [config.seed], [UNTRAINED_STEP], counts)
  report['final_model'] = (f'{compare_lib.LABELS[method]} is not trained: it maps any scene '
                           f'with config.levelset.{{{",".join(settings)}}} as they are.\n')
  if jax.process_index() == 0:
    crossval_lib.write(report, method_dir)
  return report


def _saved_counts(path, held, settings):
  """A fold's saved {site: counts}, or None if not yet mapped."""
  if not os.path.exists(path):
    return None
  with open(path) as f:
    saved = json.load(f)
  if saved['val_sites'] != held or saved['levelset'] != settings:
    raise ConfigError(f'{path}: mapped with other sites or level-set settings: use another '
                      '--workdir, or the config it was mapped with')
  return saved['counts']


def write(reports, workdir, name, what, labels=None, note=''):
  """WORKDIR/<name>.{json,md}: one row per report, rows named by `labels` or their key;
  the held-out folds named are the first report's."""
  labels = labels or {}
  rows = crossval_report.comparison({labels.get(k, k): r for k, r in reports.items()})
  first = next(iter(reports.values()))
  text = (f'# {len(first["folds"])}-fold cross-validation, {len(first["sites"])} sites, '
          f'one row per {what}\n\nPooled over every held-out site of every fold and seed '
          'at the last step (the same budget for all); mean +- sd over the fold runs; the '
          'best pooled F1 over the eval steps and its step. Percent. Held out: '
          + '; '.join(f'fold {k}: {", ".join(f)}' for k, f in enumerate(first['folds']))
          + f'.{note}\n\n' + crossval_report.comparison_markdown(rows, what) + '\n')
  os.makedirs(workdir, exist_ok=True)
  crossval_lib.write_json(os.path.join(workdir, f'{name}.json'),
                          {'folds': first['folds'], 'rows': rows})
  with open(os.path.join(workdir, f'{name}.md'), 'w') as f:
    f.write(text)
  print(f'{text}\nin {os.path.join(workdir, name)}.md', flush=True)
  return rows


def collect(workdir, runs, name='rows'):
  """WORKDIR/<name>.{json,md} over the finished cross-validations WORKDIR/<run>; a run
  on other folds than the first (data.extra_sites adds a site) is starred."""
  reports = {}
  for run_dir in runs:
    path = os.path.join(workdir, run_dir, 'crossval.json')
    if not os.path.exists(path):
      raise InputError(f'{path}: not found; cross-validate {run_dir} first')
    with open(path) as f:
      reports[run_dir] = json.load(f)
  first = next(iter(reports.values()))['folds']
  other = [r for r, report in reports.items() if report['folds'] != first]
  note = (' Starred rows held out other folds (other sites, seed or --folds): their scores '
          'include sites the others did not score.' if other else '')
  write(reports, workdir, name, 'row', {r: f'{r} *' for r in other}, note)
  return reports
