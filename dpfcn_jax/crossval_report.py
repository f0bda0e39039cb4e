"""The cross-validation report: per fold, per site, pooled, mean +- sd, at every eval step.

The headline is pooled: the Table II criteria of the confusion counts summed over every
held-out site of every fold (and seed). Averaging per-fold scores would weigh a fold of
small, nearly unchanged sites like one of large ones, and a fold with no detection has
no defined CR; summed counts have neither problem.
"""
import numpy as np

from dpfcn_jax import metrics

TABLE_KEYS = ('cp', 'cr', 'qa', 'oa', 'aa', 'f1')


def summarise(folds, seeds, steps, counts):
  """The report of `counts[(fold, seed)][step][site]` = (tp, fp, fn, tn).

  `folds` lists each fold's held-out site names; every list in the report runs
  parallel to `steps`. The chosen step is the first with the best pooled F1.
  """
  held = [(k, n) for k, names in enumerate(folds) for n in names]
  runs = [{'fold': k, 'seed': s, 'sites': list(names),
           'scores': [metrics.pooled([counts[k, s][t][n] for n in names]) for t in steps]}
          for s in seeds for k, names in enumerate(folds)]
  pooled = [metrics.pooled([counts[k, s][t][n] for s in seeds for k, n in held])
            for t in steps]
  f1 = [p['f1'] for p in pooled]
  return {
      'steps': list(steps), 'folds': [list(f) for f in folds], 'seeds': list(seeds),
      'pooled': pooled,
      'pooled_by_seed': {str(s): [metrics.pooled([counts[k, s][t][n] for k, n in held])
                                  for t in steps] for s in seeds},
      'sites': {n: [metrics.pooled([counts[k, s][t][n] for s in seeds]) for t in steps]
                for k, n in held},
      'runs': runs,
      'mean': [{m: float(np.mean(_over(runs, i, m))) for m in metrics.KEYS}
               for i in range(len(steps))],
      'sd': [{m: _sd(_over(runs, i, m)) for m in metrics.KEYS} for i in range(len(steps))],
      'chosen_step': steps[int(np.argmax(f1))],
      'last_step': steps[-1],
  }


def _over(runs, i, key):
  return [r['scores'][i][key] for r in runs]


def _sd(values):
  return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def markdown(report, final_model=''):
  """crossval.md: the headline rows, every eval step, then folds and sites at the chosen
  and last steps; `final_model` is appended as it is."""
  steps = report['steps']
  runs, seeds = report['runs'], report['seeds']
  lines = [f'# Cross-validation: {len(report["folds"])} folds x {len(seeds)} seed(s), '
           f'{len(report["sites"])} sites', '',
           'Held out: ' + '; '.join(f'fold {k}: {", ".join(f)}'
                                    for k, f in enumerate(report['folds'])) + '.', '',
           'Pooled: the scores of the confusion counts summed over every held-out site of '
           'every fold and seed (the headline). Mean +- sd: over the '
           f'{len(runs)} fold models, each scored on its own held-out sites. Percent.', '']
  header = ['| step | ' + ' | '.join(k.upper() for k in TABLE_KEYS)
            + ' | F1 mean +- sd | QA mean +- sd |', '|---' * (len(TABLE_KEYS) + 3) + '|']
  chosen, last = steps.index(report['chosen_step']), len(steps) - 1
  lines += header + [_step_row(report, chosen, ' (best pooled F1)'),
                     _step_row(report, last, ' (last)')]
  if len(seeds) > 1:
    lines += [''] + [f'Pooled F1 per seed at step {steps[i]}: ' + ', '.join(
        f'seed {s} {100 * by_step[i]["f1"]:.2f}' for s, by_step in report['pooled_by_seed'].items())
        for i in sorted({chosen, last})]
  lines += ['', '## Every eval step', '']
  lines += header + [_step_row(report, i) for i in range(len(steps))]
  for i in sorted({chosen, last}):
    lines += ['', f'## Folds at step {steps[i]}', '', metrics.format_table(
        {f'fold {r["fold"]} seed {r["seed"]} ({", ".join(r["sites"])})': r['scores'][i]
         for r in runs}, TABLE_KEYS)]
    lines += ['', f'## Sites at step {steps[i]} (counts summed over seeds)', '',
              metrics.format_table({n: s[i] for n, s in report['sites'].items()}, TABLE_KEYS)]
  if final_model:
    lines += ['', '## Final model', '', final_model]
  return '\n'.join(lines) + '\n'


def _step_row(report, i, label=''):
  p, mean, sd = report['pooled'][i], report['mean'][i], report['sd'][i]
  cells = [f'{100 * p[k]:.2f}' for k in TABLE_KEYS]
  cells += [f'{100 * mean[k]:.2f} +- {100 * sd[k]:.2f}' for k in ('f1', 'qa')]
  return f'| {report["steps"][i]}{label} | ' + ' | '.join(cells) + ' |'


def comparison(reports):
  """One row per cross-validation report ({name: report}), each at its last step: the
  same budget for every method, with no choice made on the held-out sites. The best
  pooled F1 over the eval steps and its step come along, as what a choice could add."""
  rows = {}
  for name, r in reports.items():
    best = r['steps'].index(r['chosen_step'])
    rows[name] = {'step': r['last_step'], 'runs': len(r['runs']), 'sites': len(r['sites']),
                  'pooled': r['pooled'][-1], 'mean': r['mean'][-1], 'sd': r['sd'][-1],
                  'best_step': r['chosen_step'], 'best_f1': r['pooled'][best]['f1']}
  return rows


def comparison_markdown(rows, what='method'):
  """The rows of `comparison` as a table, pooled scores first; percent."""
  lines = [f'| {what} | step | ' + ' | '.join(k.upper() for k in TABLE_KEYS)
           + ' | F1 mean +- sd | QA mean +- sd | runs | sites | best pooled F1 (step) |',
           '|---' * (len(TABLE_KEYS) + 7) + '|']
  for name, row in rows.items():
    cells = [f'{100 * row["pooled"][k]:.2f}' for k in TABLE_KEYS]
    cells += [f'{100 * row["mean"][k]:.2f} +- {100 * row["sd"][k]:.2f}' for k in ('f1', 'qa')]
    cells += [str(row['runs']), str(row['sites']),
              f'{100 * row["best_f1"]:.2f} ({row["best_step"]})']
    lines.append(f'| {name} | {row["step"]} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)
