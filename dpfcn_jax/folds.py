"""Cross-validation folds of whole sites, stratified by site group, and each fold's config.

With a handful of labelled sites a choice made on one or two val sites is mostly noise;
scoring every labelled non-test site once, held out by a model that never saw it, is
the basis on which a recipe and its step count are chosen.
"""
import os
import pathlib
import re

import numpy as np

from dpfcn_jax.errors import ConfigError, InputError

LABELLED = ('train', 'val')  # with data.extra_sites; the test split is never read


def split_sites(data_config, split):
  """Site names of a split as its `<split>_sites` field takes them; listed, else all."""
  listed = tuple(data_config[f'{split}_sites'])
  if listed:
    return list(listed)
  if data_config.kind == 'synthetic':
    return [f'{split}-{i:02d}' for i in range(data_config.synthetic.num_scenes[split])]
  folder = pathlib.Path(data_config.root) / split
  return [f'{split}/{p.name}' for p in sorted(folder.glob('*')) if p.is_dir()]


def labelled_sites(data_config):
  """Every labelled non-test site once that folds hold out: the train, val and extra
  sites, in that order, less data.train_only_sites."""
  if data_config.kind not in ('files', 'synthetic'):
    raise ConfigError(f'unknown data.kind {data_config.kind!r}: expected files or synthetic')
  if data_config.kind == 'files' and not data_config.root:
    raise ConfigError('data.root is empty: set --config.data.root=DIR')
  names = [*(n for split in LABELLED for n in split_sites(data_config, split)),
           *data_config.extra_sites]
  train_only = train_only_sites(data_config)
  sites = [s for s in dict.fromkeys(os.path.normpath(n) for n in names) if s not in train_only]
  if not sites:
    raise ConfigError(f'no labelled sites: data.train_sites, val_sites and extra_sites are '
                      f'empty and {data_config.root} has no train/ or val/ site folders')
  test = {os.path.normpath(n) for n in split_sites(data_config, 'test')}
  leaked = [s for s in sites + train_only if s in test]
  if leaked:
    raise ConfigError(f'data.test_sites {leaked} are also train, val or extra sites: '
                      'test sites never enter cross-validation')
  reported = [site_name(s) for s in sites + train_only]
  twins = sorted({n for n in reported if reported.count(n) > 1})
  if twins:
    raise ConfigError(f'sites {twins} share a folder name, which names them in the scores: '
                      'rename one')
  if data_config.kind == 'files':
    for s in sites + train_only:
      if not (pathlib.Path(data_config.root) / s).is_dir():
        raise InputError(f'{pathlib.Path(data_config.root) / s}: site folder not found')
  return sites


def train_only_sites(data_config):
  """data.train_only_sites, normalised: in every fold's training set, held out by none."""
  return list(dict.fromkeys(os.path.normpath(n) for n in data_config.train_only_sites))


def every_steps(config):
  """How often folds score their held-out sites: crossval.eval_every_steps, else
  eval_every_steps (a final-model config validates nothing: its own is 0)."""
  return config.crossval.eval_every_steps or config.eval_every_steps


def site_name(site):
  """The name a site's scores go by (io.load_site names a site after its folder)."""
  return pathlib.PurePath(site).name


def site_group(site, rule):
  """The stratum of `site`: the first group (else the match) of regex `rule` at the start
  of its name; one stratum for all when `rule` is ''."""
  if not rule:
    return ''
  name = site_name(site)
  try:
    match = re.match(rule, name)
  except re.error as e:
    raise ConfigError(f'data.site_group {rule!r} is not a regular expression: {e}') from e
  if match is None:
    raise ConfigError(f'data.site_group {rule!r} does not match site {name!r}')
  return match.group(1) if match.re.groups else match.group(0)


def plan(sites, num_folds, seed, rule=''):
  """`num_folds` disjoint lists of sites that together hold every site once.

  Each stratum is shuffled (a function of seed and num_folds) and dealt round-robin, the
  dealing carrying on from stratum to stratum, so every fold holds every stratum with at
  least num_folds sites and fold sizes differ by one at most.
  """
  if not 2 <= num_folds <= len(sites):
    raise ConfigError(f'--folds={num_folds}: expected 2 to {len(sites)} (the labelled '
                      'non-test sites)')
  strata = {}
  for s in sites:
    strata.setdefault(site_group(s, rule), []).append(s)
  rng = np.random.default_rng([seed, num_folds])
  dealt = [s for g in sorted(strata) for s in rng.permutation(strata[g]).tolist()]
  return [dealt[k::num_folds] for k in range(num_folds)]


def fold_config(config, folds, k, seed):
  """The config that trains on every fold but `k` and validates on fold `k`."""
  c = config.copy_and_resolve_references()
  c.data.train_sites = (*(s for j, f in enumerate(folds) if j != k for s in f),
                        *train_only_sites(config.data))
  c.data.val_sites = tuple(folds[k])
  c.eval_every_steps = every_steps(config)
  c.seed = seed
  # Every eval step is scored across folds; a best-on-val checkpoint inside a fold
  # would be a choice made on its held-out sites.
  c.select_best = ''
  return c


def group_configs(fold_config, rule):
  """{group: config} training one model per site group of the fold's held-out sites
  (crossval.per_group): that group's training sites (and every train-only site), scored
  on that group's held-out sites."""
  train_only = train_only_sites(fold_config.data)
  configs = {}
  for group in sorted({site_group(s, rule) for s in fold_config.data.val_sites}):
    c = fold_config.copy_and_resolve_references()
    c.data.train_sites = tuple(s for s in c.data.train_sites
                               if s in train_only or site_group(s, rule) == group)
    c.data.val_sites = tuple(s for s in c.data.val_sites if site_group(s, rule) == group)
    if len(c.data.train_sites) == len(train_only):
      raise ConfigError(f'crossval.per_group: every site of group {group!r} is held out '
                        f'together ({", ".join(c.data.val_sites)}), so no model of that '
                        'group trains: use fewer folds')
    configs[group] = c
  return configs


def final_overrides(config, sites, num_train_steps):
  """Config overrides of the final model: every labelled site (train-only ones too), no
  val, the last step; only those the config does not already hold."""
  values = {'data.train_sites': (*sites, *train_only_sites(config.data)),
            'data.val_sites': (), 'eval_every_steps': 0, 'select_best': '',
            'num_train_steps': num_train_steps}
  return {k: v for k, v in values.items() if _get(config, k) != v}


def _get(config, dotted):
  for key in dotted.split('.'):
    config = config[key]
  return tuple(config) if isinstance(config, (list, tuple)) else config
