"""Tests of the synthetic bitemporal landslide scenes (dpfcn_jax.data.synthetic).

Besides the contract (shapes, dtypes, determinism), they pin the property the
dataset exists for: a change-magnitude threshold is fooled by the pseudo-changes
(CMI + Otsu scores a poor QA), while a pixel classifier that sees BOTH dates
separates the scars, so the task is hard for CMI methods yet learnable.
"""
import numpy as np
import pytest
from scipy import ndimage

from dpfcn_jax.data import synthetic
from dpfcn_jax.errors import ConfigError

SIDE = 600                          # evaluation scenes, the size of a small site
EVAL_SEEDS = (0, 1, 2)
TRAIN_SIDE = 320                    # a pixel classifier needs variety more than size
TRAIN_SEEDS = tuple(range(1000, 1008))  # disjoint from EVAL_SEEDS
SMOOTH_PX = 3                       # feature smoothing, absorbs the +-1 px misregistration
CLEAN_PX = 5                        # median filter of the classifier's map


def _scenes(seeds, side):
  return [synthetic.generate_scene(s, side, side) for s in seeds]


@pytest.fixture(scope='module')
def eval_scenes():
  return _scenes(EVAL_SEEDS, SIDE)


@pytest.fixture(scope='module')
def train_scenes():
  return _scenes(TRAIN_SEEDS, TRAIN_SIDE)


def otsu_threshold(values, bins=256):
  """Threshold maximising the between-class variance of a histogram (Otsu)."""
  hist, edges = np.histogram(values, bins)
  p = hist / hist.sum()
  centres = 0.5 * (edges[:-1] + edges[1:])
  w0 = np.cumsum(p)
  m0 = np.cumsum(p * centres)
  with np.errstate(divide='ignore', invalid='ignore'):
    between = (m0[-1] * w0 - m0) ** 2 / (w0 * (1.0 - w0))
  return centres[np.nanargmax(between)]


def quality(pred, truth):
  """QA = TP / (TP + FP + FN), the paper's landslide score."""
  tp = np.sum(pred & truth)
  return tp / (tp + np.sum(pred & ~truth) + np.sum(~pred & truth))


def cmi_otsu(scene):
  """Change magnitude (norm of the band differences) thresholded with Otsu."""
  cmi = np.linalg.norm(scene['post'].astype(np.float32) - scene['pre'], axis=-1)
  return cmi > otsu_threshold(cmi)


def pixel_features(scene, dates=('pre', 'post')):
  """Per-pixel log band ratios to the scene median: gains and colour casts of
  one date cancel, so scenes can share one classifier."""
  feats = []
  for date in dates:
    x = ndimage.uniform_filter(scene[date].astype(np.float32), (SMOOTH_PX, SMOOTH_PX, 1))
    x += 1.0
    feats.append(np.log(x / np.median(x.reshape(-1, 3), axis=0)))
  return np.concatenate(feats, -1).reshape(-1, 3 * len(dates))


class GaussianClassifier:
  """Quadratic discriminant analysis: one Gaussian per class."""

  def __init__(self, features, labels):
    self.classes = []
    for c in (0, 1):
      x = features[labels == c]
      cov = np.cov(x.T) + 1e-4 * np.eye(x.shape[1])
      self.classes.append((x.mean(0), np.linalg.inv(cov),
                           np.linalg.slogdet(cov)[1], np.log(len(x) / len(features))))

  def log_odds(self, features):
    ll = []
    for mean, inv_cov, log_det, log_prior in self.classes:
      d = features - mean
      ll.append(-0.5 * np.einsum('ij,jk,ik->i', d, inv_cov, d) - 0.5 * log_det + log_prior)
    return ll[1] - ll[0]


def classifier_qa(train, test, dates):
  """Mean QA on `test` of a pixel classifier fitted on `train` scenes."""
  clf = GaussianClassifier(np.concatenate([pixel_features(s, dates) for s in train]),
                           np.concatenate([s['mask'].ravel() for s in train]))
  scores = []
  for s in test:
    pred = (clf.log_odds(pixel_features(s, dates)) > 0).reshape(s['mask'].shape)
    scores.append(quality(ndimage.median_filter(pred, CLEAN_PX), s['mask'] == 1))
  return float(np.mean(scores))


# ---------------------------------------------------------------------------
# Contract.


def test_scene_shape_in_range_and_deterministic():
  shapes = [synthetic.scene_shape(seed, 600, 1300) for seed in range(50)]
  for h, w in shapes:
    assert isinstance(h, int) and isinstance(w, int)
    assert 600 <= h <= 1300 and 600 <= w <= 1300
  assert shapes == [synthetic.scene_shape(seed, 600, 1300) for seed in range(50)]
  assert len(set(shapes)) > 40
  assert synthetic.scene_shape(7, 256, 256) == (256, 256)


@pytest.mark.parametrize('sides', [(600, 500), (0, 100), (10, 20)])
def test_scene_shape_rejects_bad_ranges(sides):
  with pytest.raises(ConfigError):
    synthetic.scene_shape(0, *sides)


def test_generate_scene_rejects_tiny_scenes():
  with pytest.raises(ConfigError):
    synthetic.generate_scene(0, 16, 200)


@pytest.mark.parametrize('height,width', [(96, 160), (200, 131), (32, 32)])
def test_shapes_dtypes_and_ranges(height, width):
  scene = synthetic.generate_scene(3, height, width)
  assert set(scene) == {'pre', 'post', 'mask'}
  for key in ('pre', 'post'):
    assert scene[key].shape == (height, width, 3)
    assert scene[key].dtype == np.uint8
  assert scene['mask'].shape == (height, width)
  assert scene['mask'].dtype == np.uint8
  assert set(np.unique(scene['mask'])) <= {0, 1}


def test_deterministic_from_seed():
  a = synthetic.generate_scene(11, 150, 170)
  b = synthetic.generate_scene(11, 150, 170)
  c = synthetic.generate_scene(12, 150, 170)
  for key in a:
    np.testing.assert_array_equal(a[key], b[key])
  assert not np.array_equal(a['pre'], c['pre'])
  assert not np.array_equal(a['post'], c['post'])


def test_generation_leaves_global_numpy_state_alone():
  np.random.seed(123)
  before = np.random.random()
  np.random.seed(123)
  synthetic.generate_scene(5, 64, 64)
  assert np.random.random() == before


# ---------------------------------------------------------------------------
# Content.


def test_images_use_the_dynamic_range(eval_scenes):
  for s in eval_scenes:
    for key in ('pre', 'post'):
      img = s[key]
      assert 25 < np.median(img) < 160
      assert np.mean(img == 255) < 0.01 and np.mean(img == 0) < 0.01
      assert img.std() > 12


def test_landslide_fraction_and_sizes(eval_scenes):
  for s in eval_scenes:
    mask = s['mask']
    assert 0.02 <= mask.mean() <= 0.08
    labels, n = ndimage.label(mask)
    sizes = np.bincount(labels.ravel())[1:]
    assert n >= 3                                  # several scars per scene
    assert sizes.min() >= synthetic.PARAMS.min_scar_px  # no slivers
    assert sizes.max() <= 1.2 * synthetic.PARAMS.slide_area_px[1]


def test_scars_are_elongated(eval_scenes):
  ratios = []
  for s in eval_scenes:
    labels, n = ndimage.label(s['mask'])
    for region in ndimage.find_objects(labels):
      yy, xx = np.nonzero(labels[region] > 0)
      if yy.size < 400:
        continue
      eig = np.linalg.eigvalsh(np.cov(np.stack([yy, xx])))
      ratios.append(np.sqrt(eig[1] / eig[0]))
  assert np.median(ratios) > 1.6


def test_scars_exist_in_post_only(eval_scenes):
  for s in eval_scenes:
    m = s['mask'] == 1
    pre, post = s['pre'].astype(np.float32), s['post'].astype(np.float32)
    # Pre: vegetation under the future scars, green-dominant and as dark as the scene.
    r, g = np.median(pre[m][:, 0]), np.median(pre[m][:, 1])
    assert g > r
    assert np.median(pre[m].mean(-1)) < 1.4 * np.median(pre.mean(-1))
    # Post: bare soil, red-dominant and much brighter than the scene.
    assert np.median(post[m][:, 0]) > np.median(post[m][:, 1])
    assert np.median(post[m].mean(-1)) > 1.6 * np.median(post.mean(-1))


def test_dates_differ_outside_the_scars(eval_scenes):
  """Seasonal / illumination pseudo-change: unchanged ground still changes."""
  for s in eval_scenes:
    keep = s['mask'] == 0
    diff = np.abs(s['post'].astype(np.float32) - s['pre'])[keep]
    assert diff.mean() > 8.0


# ---------------------------------------------------------------------------
# Honesty: hard for change magnitude, learnable from both dates.


@pytest.fixture(scope='module')
def qa_scores(train_scenes, eval_scenes):
  """Mean QA on the evaluation scenes of CMI + Otsu and of pixel classifiers."""
  return {
      'cmi': float(np.mean([quality(cmi_otsu(s), s['mask'] == 1) for s in eval_scenes])),
      'both': classifier_qa(train_scenes, eval_scenes, ('pre', 'post')),
      'post': classifier_qa(train_scenes, eval_scenes, ('post',)),
  }


def test_cmi_otsu_is_fooled(qa_scores):
  assert qa_scores['cmi'] <= 0.5


def test_both_dates_separate_scars(qa_scores):
  assert qa_scores['both'] >= 0.6
  assert qa_scores['both'] >= qa_scores['cmi'] + 0.2


def test_post_alone_is_confused_by_bare_ground(qa_scores):
  """Rock, roads and old scars look like scars in the post image: only the
  pre image tells them apart."""
  assert qa_scores['post'] <= qa_scores['both'] - 0.1
