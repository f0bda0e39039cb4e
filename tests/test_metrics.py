"""Table II criteria, pinned on the paper's site F row (Tables III and IV)."""
import numpy as np
import pytest

from dpfcn_jax import metrics


def _site_f_counts():
  changed, unchanged, cp, cr = 30_607, 542_833, 0.7354, 0.8562
  tp = round(cp * changed)
  fp = round(tp / cr) - tp
  return tp, fp, changed - tp, unchanged - fp


def test_site_f_dp_fcn_row_of_table4():
  s = metrics.scores(*_site_f_counts())
  for key, paper in (('cp', 73.54), ('cr', 85.62), ('qa', 65.46), ('oa', 97.93), ('aa', 86.42)):
    assert 100 * s[key] == pytest.approx(paper, abs=0.011), key


def test_table2_printed_aa_form_does_not_reproduce_table4():
  tp, fp, fn, tn = _site_f_counts()
  printed_form = 0.5 * (tp / (tp + fp) + tn / (tn + fn))
  assert abs(100 * printed_form - 86.42) > 1.0


def test_scores_keys_and_ranges():
  s = metrics.scores(10, 5, 3, 82)
  assert set(s) == set(metrics.KEYS)
  assert all(0.0 <= v <= 1.0 for v in s.values())
  assert s['iou'] == s['qa']
  assert s['f1'] == pytest.approx(2 * 10 / (2 * 10 + 5 + 3))


def test_kappa_is_one_for_perfect_and_zero_for_chance():
  assert metrics.scores(20, 0, 0, 80)['kappa'] == pytest.approx(1.0)
  # Prediction independent of the truth: p(pred)=0.5, p(true)=0.2.
  assert metrics.scores(10, 40, 10, 40)['kappa'] == pytest.approx(0.0, abs=1e-12)


def test_confusion_ignores_invalid_pixels():
  pred = np.array([[1, 1], [0, 0]])
  mask = np.array([[1, 0], [1, 0]])
  assert metrics.confusion(pred, mask) == (1, 1, 1, 1)
  assert metrics.confusion(pred, mask, np.array([[1, 0], [0, 1]])) == (1, 0, 0, 1)


def test_pooled_sums_counts_before_scoring():
  a, b = (5, 0, 5, 90), (0, 10, 0, 90)
  p = metrics.pooled([a, b])
  assert (p['tp'], p['fp'], p['fn'], p['tn']) == (5, 10, 5, 180)
  assert p['qa'] == pytest.approx(5 / 20)
