"""Window blending: equals a whole-scene pass where one window covers it, streams by
bands, shows no seams, and TTA / MC dropout behave."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dpfcn_jax import inference, train_state
from dpfcn_jax.data import augment, synthetic, tiling
from dpfcn_jax.models import create_model


@pytest.fixture(scope='module')
def net():
  """A random tiny DP-FCN: weights need not be trained for geometry to be tested."""
  from conftest import load_config  # pylint: disable=import-outside-toplevel
  c = load_config('synthetic')
  c.model.width, c.model.jfl_width, c.model.depth, c.data.tile = 4, 4, 2, 32
  c.model.keep_prob = 0.9  # MC dropout needs dropout
  model = create_model(c.model)
  state = train_state.create_train_state(c, jax.random.key(0, impl=c.prng_impl), model)
  return model, jax.device_get(state.params)


def _scene(h, w, seed=3):
  s = synthetic.generate_scene(seed, max(h, 32), max(w, 32))
  return tuple(s[k][:h, :w].astype(np.float32) / 255 for k in ('pre', 'post'))


def _forward(model, params, pre, post):
  logits = model.apply({'params': params}, pre[None], post[None], train=False)
  return np.asarray(jax.nn.softmax(logits)[0, ..., 1])


def test_mirror_index_is_pad_to():
  for n in range(1, 7):
    for size in range(n, 4 * n + 3):
      a = np.arange(n)
      np.testing.assert_array_equal(a[inference.mirror_index(n, size)],
                                    tiling.pad_to(a[:, None], size, 1)[:, 0])


def test_one_window_scene_equals_whole_scene_forward_pass(net):
  model, params = net
  infer = inference.make_infer_fn(model)
  pre, post = _scene(32, 32)
  prob, std = inference.scene_probability(infer, params, pre, post, 32, 24, 2)
  np.testing.assert_allclose(prob, _forward(model, params, pre, post), atol=1e-6)
  assert not std.any()
  # Smaller than a window, not square: mirror-padded to the window, then cropped back.
  pre, post = _scene(20, 27)
  prob, _ = inference.scene_probability(infer, params, pre, post, 32, 24, 2)
  padded = [tiling.pad_to(a, 32, 32) for a in (pre, post)]
  np.testing.assert_allclose(prob, _forward(model, params, *padded)[:20, :27], atol=1e-6)


def test_streamed_bands_equal_whole_scene_blend_with_bounded_reads(net):
  model, params = net
  infer = inference.make_infer_fn(model)
  h, w, tile, stride = 70, 90, 32, 24
  pre, post = _scene(h, w)
  # Reference: the whole padded scene blended at once.
  ph, pw = tiling.padded_size(h, tile, stride), tiling.padded_size(w, tile, stride)
  pre_p, post_p = tiling.pad_to(pre, ph, pw), tiling.pad_to(post, ph, pw)
  weight = tiling.blend_weight(tile, tile - stride)
  acc, wsum = np.zeros((ph, pw), np.float32), np.zeros((ph, pw), np.float32)
  for r, c in inference.window_grid(h, w, tile, stride):
    acc[r:r + tile, c:c + tile] += weight * _forward(
        model, params, pre_p[r:r + tile, c:c + tile], post_p[r:r + tile, c:c + tile])
    wsum[r:r + tile, c:c + tile] += weight
  reads, emitted = [], []

  def read_rows(index):
    reads.append(index)
    return pre[index], post[index]

  bands = []
  for row0, prob, _ in inference.stream_probability(infer, params, read_rows, h, w, tile, stride,
                                                    1, jax.random.key(0)):
    emitted.append((row0, len(reads)))
    bands.append(prob)
  np.testing.assert_allclose(np.concatenate(bands), (acc / wsum)[:h, :w], atol=2e-6)
  assert all(len(i) == tile for i in reads)  # one window-row of input at a time
  assert [r for r, _ in emitted] == [0, 24, 48] and emitted[0][1] < len(reads)


class _EdgeArtefactNet(nn.Module):
  """Logits follow the scene, plus a bias on the first row and column of each window:
  what a real network does where its window lacks context, here by construction, so
  the test does not hang on what random weights happen to do."""

  @nn.compact
  def __call__(self, pre, post, *, train):
    del train
    n, h, w, _ = pre.shape
    rim = np.zeros((h, w), np.float32)
    rim[0], rim[:, 0] = 2.0, 2.0
    z = 2.0 * jnp.mean(post - pre, axis=-1) + rim
    return jnp.stack([jnp.zeros_like(z), z], axis=-1)


def test_blending_leaves_no_seam_at_window_borders():
  infer = inference.make_infer_fn(_EdgeArtefactNet())
  pre, post = _scene(130, 130)

  def border_and_inside(stride):
    prob, _ = inference.scene_probability(infer, {}, pre, post, 32, stride, 4)
    starts = tiling.window_starts(130, 32, stride)
    borders = sorted({s for s in starts if s > 0} | {s + 32 for s in starts if s + 32 < 130})
    steps = np.abs(np.concatenate([np.diff(prob, axis=1), np.diff(prob, axis=0).T]))
    at = np.isin(np.arange(129), np.array(borders) - 1)
    return steps[:, at].mean(), steps[:, ~at].mean()

  border, inside = border_and_inside(24)
  assert border <= 1.1 * inside
  border, inside = border_and_inside(32)  # no overlap: every window edge shows
  assert border > 2 * inside


def test_tta_is_equivariant_and_mc_dropout_gives_uncertainty(net):
  model, params = net
  pre, post = _scene(32, 32)
  tta = inference.make_infer_fn(model, tta=True)
  prob, _ = inference.scene_probability(tta, params, pre, post, 32, 32, 1)
  k = 5  # a transpose-like dihedral element
  turned, _ = inference.scene_probability(tta, params, augment.dihedral(pre, k),
                                          augment.dihedral(post, k), 32, 32, 1)
  np.testing.assert_allclose(turned, augment.dihedral(prob, k), atol=1e-5)
  mc = inference.make_infer_fn(model, mc_samples=3)
  runs = [inference.scene_probability(mc, params, pre, post, 32, 32, 1, jax.random.key(s))
          for s in (7, 7, 8)]
  assert runs[0][1].min() >= 0 and runs[0][1].mean() > 0
  np.testing.assert_array_equal(runs[0][0], runs[1][0])
  assert not np.array_equal(runs[0][0], runs[2][0])
