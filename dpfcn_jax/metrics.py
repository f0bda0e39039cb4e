"""Accuracy criteria of Table II (CP, CR, QA, OA, AA) plus F1, IoU and Cohen's kappa.

AA: Table II prints AA = (TP/(TP+FP) + TN/(TN+FN)) / 2, but the numbers of Table IV
follow the mean of the two class recalls, AA = (TP/(TP+FN) + TN/(TN+FP)) / 2: site F,
DP-FCN (30,607 changed / 542,833 unchanged, CP 73.54, CR 85.62) gives AA 86.42 only
with the recall form. The recall form is implemented.
"""
import numpy as np

KEYS = ('cp', 'cr', 'qa', 'oa', 'aa', 'f1', 'iou', 'kappa')
COUNTS = ('tp', 'fp', 'fn', 'tn')  # the order of confusion() and scores()


def _div(a, b):
  """a / b with 0/0 = 0: a site with no landslide and no detection scores 0 CP/CR."""
  return float(a) / float(b) if b else 0.0


def confusion(pred, mask, valid=None):
  """(tp, fp, fn, tn) over the valid pixels of binary maps `pred` and `mask`."""
  pred, mask = np.asarray(pred).astype(bool), np.asarray(mask).astype(bool)
  if valid is None:
    valid = np.ones(pred.shape, bool)
  valid = np.asarray(valid).astype(bool)
  tp = int(np.sum(pred & mask & valid))
  fp = int(np.sum(pred & ~mask & valid))
  fn = int(np.sum(~pred & mask & valid))
  tn = int(np.sum(valid)) - tp - fp - fn
  return tp, fp, fn, tn


def scores(tp, fp, fn, tn) -> dict:
  """Table II criteria as fractions in [0, 1] (AA in its recall form, see module doc)."""
  n = tp + fp + fn + tn
  cp, cr = _div(tp, tp + fn), _div(tp, tp + fp)
  oa = _div(tp + tn, n)
  expected = _div((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn), n * n)
  return {
      'cp': cp,                                    # completeness, Table II
      'cr': cr,                                    # correctness
      'qa': _div(tp, tp + fp + fn),                # quality
      'oa': oa,                                    # overall accuracy
      'aa': 0.5 * (cp + _div(tn, tn + fp)),        # average accuracy, recall form
      'f1': _div(2 * tp, 2 * tp + fp + fn),
      'iou': _div(tp, tp + fp + fn),               # of the landslide class; equals QA
      'kappa': _div(oa - expected, 1.0 - expected) if expected < 1.0 else 0.0,
  }


def site_report(tp, fp, fn, tn) -> dict:
  return {**scores(tp, fp, fn, tn), 'tp': tp, 'fp': fp, 'fn': fn, 'tn': tn}


def pooled(counts) -> dict:
  """Scores of the summed confusion counts of several sites."""
  tp, fp, fn, tn = (sum(c[i] for c in counts) for i in range(4))
  return site_report(tp, fp, fn, tn)


def format_table(reports: dict, keys=('cp', 'cr', 'qa', 'oa', 'aa', 'f1')) -> str:
  """Markdown table, one row per site (percentages, as in Table IV)."""
  lines = ['| site | ' + ' | '.join(k.upper() for k in keys) + ' |',
           '|---' * (len(keys) + 1) + '|']
  for name, r in reports.items():
    lines.append(f'| {name} | ' + ' | '.join(f'{100 * r[k]:.2f}' for k in keys) + ' |')
  return '\n'.join(lines)
