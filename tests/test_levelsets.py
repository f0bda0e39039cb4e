"""Tests for the level-set baselines (dpfcn_jax.levelsets).

Every method compiles once for the single 96x96 scene shape used here, so
the whole file stays fast. The recovery tests use a constructed pair with a
known answer: an ellipse of change on a noisy texture, with a global
brightness shift. The noise is strong enough that plain CMI + Otsu fails
(IoU about 0.3), so a level set has to do real work to pass.
"""
import functools
import inspect

import jax
import numpy as np
import pytest
from scipy import ndimage as ndi

from dpfcn_jax import levelsets as L
from dpfcn_jax.errors import ConfigError, InputError

N = 96  # the one scene shape, so each method compiles once
SEEDS = (0, 1, 2)
MIN_IOU = 0.85  # observed minimum over 20 seeds: ELSE 0.94, RLSE 0.96, LSELUC 0.91


def make_pair(seed, n=N, noise=0.12, amp=0.25, shift=0.05):
  """(pre, post, truth): an ellipse brightens in post on a noisy RGB texture."""
  rng = np.random.default_rng(seed)
  tex = ndi.gaussian_filter(rng.random((n, n, 3)), (2, 2, 0))
  tex = (tex - tex.min()) / (tex.max() - tex.min())
  pre = 0.2 + 0.4 * tex + noise * rng.standard_normal((n, n, 3))
  yy, xx = np.mgrid[:n, :n]
  cy, cx = rng.uniform(0.3, 0.7, 2) * n
  ay, ax = rng.uniform(0.12, 0.2, 2) * n
  th = rng.uniform(0, np.pi)
  u = (yy - cy) * np.cos(th) + (xx - cx) * np.sin(th)
  v = -(yy - cy) * np.sin(th) + (xx - cx) * np.cos(th)
  truth = (u / ay) ** 2 + (v / ax) ** 2 <= 1
  post = (pre + shift + amp * truth[..., None] * np.array([1.0, 0.9, 0.7])
          + noise * rng.standard_normal((n, n, 3)))
  return np.clip(pre, 0, 1), np.clip(post, 0, 1), truth


def iou(mask, truth):
  mask = np.asarray(mask)
  return (mask & truth).sum() / max((mask | truth).sum(), 1)


@pytest.fixture(scope='module')
def scenes():
  out = []
  for seed in SEEDS:
    pre, post, truth = make_pair(seed)
    out.append((L.change_magnitude(pre, post), truth))
  return out


# ---- change magnitude image ----


def test_cmi_is_normalised_cva_norm():
  pre = np.zeros((8, 8, 3))
  post = np.zeros((8, 8, 3))
  post[1, 2] = (0.3, 0.4, 0.0)  # |d| = 0.5, the maximum
  post[5, 6] = (0.03, 0.0, 0.04)  # |d| = 0.05
  cmi = L.change_magnitude(pre, post)
  assert cmi.shape == (8, 8) and cmi.dtype == np.float32
  expected = np.zeros((8, 8))
  expected[1, 2], expected[5, 6] = 1.0, 0.1
  np.testing.assert_allclose(cmi, expected, atol=1e-6)


def test_cmi_range_and_identical_images():
  pre, post, _ = make_pair(0)
  for hm in (False, True):
    cmi = L.change_magnitude(pre, post, histogram_match=hm)
    assert cmi.min() == 0.0 and cmi.max() == pytest.approx(1.0)
    assert np.all(L.change_magnitude(pre, pre, histogram_match=hm) == 0.0)


def test_cmi_rejects_mismatched_shapes():
  with pytest.raises(InputError):
    L.change_magnitude(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))


def test_histogram_matching_maps_post_onto_pre():
  rng = np.random.default_rng(3)
  pre = rng.random((40, 50, 3))
  post = pre ** 2.2 * 0.8 + 0.1  # a monotone radiometric change per band
  for b in range(3):
    np.testing.assert_allclose(L.match_histogram(post[..., b], pre[..., b]), pre[..., b],
                               atol=1e-12)
  # A pure radiometric change is no change once matched.
  assert np.all(L.change_magnitude(pre, post, histogram_match=True) == 0.0)
  assert L.change_magnitude(pre, post, histogram_match=False).std() > 0.1
  # Different sizes: the matched values follow the template's quantiles.
  src, tpl = rng.normal(5, 2, 5000), rng.random(2000)
  out = L.match_histogram(src, tpl)
  q = np.linspace(0.05, 0.95, 19)
  np.testing.assert_allclose(np.quantile(out, q), np.quantile(tpl, q), atol=0.01)


# ---- Otsu ----


def test_otsu_splits_a_bimodal_sample():
  rng = np.random.default_rng(4)
  low, high = rng.normal(0.2, 0.03, 6400), rng.normal(0.7, 0.05, N * N - 6400)
  x = rng.permutation(np.concatenate([low, high])).reshape(N, N)  # the scene shape
  t = L.otsu_threshold(x)
  assert low.max() < t < high.min()
  # The split maximises the between-class variance over the 256-bin histogram.
  _, edges = np.histogram(x, 256)
  score = lambda c: ((x <= c).mean() * (x > c).mean()
                     * (x[x <= c].mean() - x[x > c].mean()) ** 2)
  best = max(edges[1:-1], key=score)
  assert score(t) == pytest.approx(score(best), rel=1e-9)


def test_otsu_constant_input_selects_nothing():
  x = np.full((N, N), 0.3, np.float32)
  assert not np.any(x > L.otsu_threshold(x))


# ---- the level-set methods ----


METHODS = {'else': L.else_, 'rlse': L.rlse, 'lseluc': L.lseluc}


def test_scene_is_hard_for_plain_otsu(scenes):
  # The negative control: thresholding alone must fail, or the next test proves little.
  for cmi, truth in scenes:
    assert iou(cmi > L.otsu_threshold(cmi), truth) < 0.6


@pytest.mark.parametrize('name', list(METHODS))
def test_level_sets_recover_the_changed_region(name, scenes):
  for cmi, truth in scenes:
    mask = METHODS[name](cmi)
    assert mask.shape == truth.shape and mask.dtype == bool
    score = iou(mask, truth)
    assert score >= MIN_IOU, f'{name}: IoU {score:.3f}'


@pytest.mark.parametrize('name', list(METHODS))
def test_no_change_gives_an_empty_mask(name):
  assert not np.any(METHODS[name](np.zeros((N, N), np.float32)))


def test_deterministic_and_compiled_once_per_shape(scenes):
  cores = {'else': L._else_core, 'rlse': L._rlse_core, 'lseluc': L._lseluc_core}
  (cmi_a, _), (cmi_b, _) = scenes[0], scenes[1]
  for name, fn in METHODS.items():
    first = np.asarray(fn(cmi_a))
    size = cores[name]._cache_size()
    np.testing.assert_array_equal(first, np.asarray(fn(cmi_a)))
    fn(cmi_b)  # new values, same shape: no new compilation
    assert cores[name]._cache_size() == size, name


def test_level_set_is_traceable_under_jit(scenes):
  cmi, _ = scenes[0]
  jitted = jax.jit(functools.partial(L.rlse, **L.default_params()['rlse']))
  np.testing.assert_array_equal(np.asarray(jitted(cmi)), np.asarray(L.rlse(cmi)))
  np.testing.assert_array_equal(np.asarray(jitted(cmi)), np.asarray(L.rlse(cmi)))


def test_bad_parameters_raise():
  cmi = np.zeros((N, N), np.float32)
  with pytest.raises(ConfigError):
    L.else_(cmi, sigma2_as='width')
  with pytest.raises(ConfigError):
    L.rlse(cmi, ksize=8)
  with pytest.raises(InputError):
    L.rlse(np.zeros((N, N, 3)))


# ---- defaults and dispatch ----


def test_default_params_match_signatures_and_paper():
  d = L.default_params()
  assert set(d) == {'cmi', 'else_', 'rlse', 'lseluc'}
  for section, fn in (('cmi', L.change_magnitude), ('else_', L.else_), ('rlse', L.rlse),
                      ('lseluc', L.lseluc)):
    kw = {k: p.default for k, p in inspect.signature(fn).parameters.items()
          if p.default is not inspect.Parameter.empty}
    assert d[section] == kw
  assert d['cmi'] == {'histogram_match': False}
  e, r = d['else_'], d['rlse']
  assert (e['alpha'], e['c0'], e['sigma1'], e['sigma2']) == (1.5, 1.0, 1.0, 1.0)  # [paper]
  assert (r['alpha'], r['ksize'], r['dt']) == (1.0, 9, 8.0)  # [paper]
  assert d is not L.default_params()  # callers may edit their copy


def test_run_method_dispatches(scenes):
  pre, post, truth = make_pair(SEEDS[0])
  cmi = scenes[0][0]
  params = L.default_params()
  np.testing.assert_array_equal(L.run_method('cmi_otsu', pre, post, params),
                                cmi > L.otsu_threshold(cmi))
  for name, fn in METHODS.items():
    out = L.run_method(name, pre, post, params)
    assert isinstance(out, np.ndarray) and out.dtype == bool
    np.testing.assert_array_equal(out, np.asarray(fn(cmi)))
  # Partial dicts fall back to the defaults.
  np.testing.assert_array_equal(L.run_method('rlse', pre, post, {}),
                                L.run_method('rlse', pre, post, params))
  with pytest.raises(ConfigError):
    L.run_method('snake', pre, post, params)
  with pytest.raises(ConfigError):
    L.run_method('rlse', pre, post, {'rlse': {'timestep': 8}})


def test_run_method_accepts_a_config_dict():
  ml_collections = pytest.importorskip('ml_collections')
  pre, post, _ = make_pair(SEEDS[0])
  cfg = ml_collections.ConfigDict(L.default_params())
  np.testing.assert_array_equal(L.run_method('rlse', pre, post, cfg),
                                L.run_method('rlse', pre, post, L.default_params()))


# ---- numerical helpers ----


def test_gaussian_template_and_fast_sine():
  taps = np.asarray(jax.jit(L._gauss_1d, static_argnums=0)(9, 1.0))
  t = np.arange(-4, 5)
  ref = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / 2.0)
  np.testing.assert_allclose(np.outer(taps, taps), ref / ref.sum(), atol=1e-7)
  x = np.linspace(-2 * np.pi, 2 * np.pi, 10001).astype(np.float32)
  np.testing.assert_allclose(np.asarray(jax.jit(L._sin)(x)), np.sin(x.astype(np.float64)), atol=3e-7)
