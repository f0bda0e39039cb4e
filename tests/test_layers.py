"""The GEMM-gradient layers must equal plain nn.Conv / nn.ConvTranspose.

Parameters come from numpy and keys are 'rbg': compiling threefry takes seconds
on XLA:CPU, and these tests should take a few.
"""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dpfcn_jax.models import layers, winograd
from dpfcn_jax.models.compute import Policy

_X = np.random.default_rng(0).standard_normal((2, 6, 8, 3)).astype(np.float32)


class _Net(nn.Module):
  """Conv3x3 -> ReLU -> UpConv2x2 -> Conv3x3, the layer mix of a U-Net decoder."""
  fast_wgrad: bool
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    kw = dict(dtype=self.dtype, compute=Policy(fast_wgrad=self.fast_wgrad))
    x = nn.relu(layers.Conv3x3(6, name='c0', **kw)(x))
    x = layers.UpConv2x2(5, name='up', **kw)(x)
    return layers.Conv3x3(4, name='c1', **kw)(x)


def _reference_apply(params, x):
  """_Net written with the stock flax modules, applied to _Net's parameters."""
  p = params['params']
  conv = lambda f, q, x: nn.Conv(f, (3, 3), padding='SAME').apply({'params': q['conv']}, x)
  x = nn.relu(conv(6, p['c0'], x))
  x = nn.ConvTranspose(5, (2, 2), strides=(2, 2), padding='VALID').apply(
      {'params': p['up']['conv']}, x)
  return conv(4, p['c1'], x)


def _shapes(module, x):
  return jax.tree.map(jnp.shape, jax.eval_shape(module.init, jax.random.PRNGKey(0), x))


def _random_params(module, x):
  """Noise in every leaf (biases too, which init would leave at zero)."""
  rng = np.random.default_rng(1)
  return jax.tree.map(lambda s: 0.3 * rng.standard_normal(s).astype(np.float32),
                      _shapes(module, x), is_leaf=lambda s: isinstance(s, tuple))


@functools.cache
def _grad_fn(apply):
  def loss(params, x):
    y = apply(params, x).astype(jnp.float32)
    return jnp.sum(jnp.sin(y) * jnp.arange(y.size).reshape(y.shape) / y.size)
  return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))


def _loss_and_grads(apply, params, x):
  return _grad_fn(apply)(params, x)


@pytest.fixture
def wgrad_rows(monkeypatch):
  """Sets layers.WGRAD_ROWS; traces cached under another value are dropped before and after."""
  def set_rows(rows):
    monkeypatch.setattr(layers, 'WGRAD_ROWS', rows)
    _grad_fn.cache_clear()
    jax.clear_caches()
  yield set_rows
  _grad_fn.cache_clear()
  jax.clear_caches()


def _assert_close(a, b, tol=1e-4):
  # atol scales with the largest entry: sums of 10^5 products round differently on a GPU.
  jax.tree.map(lambda u, v: np.testing.assert_allclose(
      u, v, rtol=tol, atol=tol * max(1.0, float(np.max(np.abs(v))))), a, b)


@pytest.mark.parametrize('fast_wgrad,rows', [(True, 8192), (True, 5), (False, 8192)])
def test_matches_stock_flax(fast_wgrad, rows, wgrad_rows):
  # rows=5: the weight-gradient products run in row chunks (96 rows: 19 chunks of 5
  # do not divide it, so 16 of 6 are used), as they do at full image sizes.
  wgrad_rows(rows)
  net = _Net(fast_wgrad)
  # The stock modules' parameter names and shapes, so checkpoints are interchangeable.
  stock = lambda m, c: _shapes(m, np.zeros((1, 4, 4, c), np.float32))
  assert _shapes(net, _X) == {'params': {
      'c0': {'conv': stock(nn.Conv(6, (3, 3)), 3)['params']},
      'up': {'conv': stock(nn.ConvTranspose(5, (2, 2)), 6)['params']},
      'c1': {'conv': stock(nn.Conv(4, (3, 3)), 5)['params']}}}
  params = _random_params(net, _X)
  _assert_close(jax.jit(net.apply)(params, _X), jax.jit(_reference_apply)(params, _X))
  _assert_close(_loss_and_grads(net.apply, params, _X),
                _loss_and_grads(_reference_apply, params, _X))


@pytest.mark.parametrize('rows,chunks', [(7, 8), (8192, 1), (64, 1), (10, 4)])
def test_wgrad_dot_chunks_sum_to_the_full_product(rows, chunks, wgrad_rows):
  wgrad_rows(rows)
  rng = np.random.default_rng(3)
  x, g = rng.standard_normal((2, 7, 4, 5)), rng.standard_normal((2, 7, 4, 3))  # 56 rows
  x, g = x.astype(np.float32), g.astype(np.float32)
  assert jax.make_jaxpr(layers.wgrad_dot)(x, g).out_avals[0].shape == (5, 3)
  einsum = [e for e in jax.make_jaxpr(layers.wgrad_dot)(x, g).eqns
            if e.primitive.name == 'dot_general'][0]
  assert einsum.invars[0].aval.shape[0] == chunks
  np.testing.assert_allclose(layers.wgrad_dot(x, g), np.einsum('nhwc,nhwo->co', x, g),
                             rtol=1e-5, atol=1e-5)


def test_same_initial_values_either_way():
  init = jax.jit(lambda k: (_Net(True).init(k, _X), _Net(False).init(k, _X)))
  jax.tree.map(np.testing.assert_array_equal, *init(jax.random.key(0, impl='rbg')))


def test_upconv_kernel_orientation():
  # A single non-zero input pixel paints the flipped kernel into its 2x2 output block.
  x = np.zeros((1, 2, 2, 1), np.float32)
  x[0, 1, 0, 0] = 1.0
  k = np.arange(4.0, dtype=np.float32).reshape(2, 2, 1, 1)
  y = np.asarray(jax.jit(layers.upconv2x2)(x, k))[0, :, :, 0]
  np.testing.assert_array_equal(y[2:, :2], k[::-1, ::-1, 0, 0])
  assert np.abs(y).sum() == k.sum()


def test_mixed_precision_grads_in_param_dtype():
  # bfloat16 compute, float32 parameters: gradients come back as float32 and
  # agree with the float32 reference to bfloat16 accuracy (in norm).
  net = _Net(True, dtype=jnp.bfloat16)
  params = _random_params(net, _X)
  assert jax.eval_shape(net.apply, params, _X).dtype == jnp.bfloat16
  _, (grads, _) = _loss_and_grads(net.apply, params, _X)
  assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(grads))
  _, (expected, _) = _loss_and_grads(_reference_apply, params, _X)
  for g, e in zip(jax.tree.leaves(grads), jax.tree.leaves(expected)):
    assert np.linalg.norm(g - e) <= 5e-2 * np.linalg.norm(e)


@pytest.mark.parametrize('image', [(2, 5, 7), (1, 1, 1)])
def test_conv3x3_grads_match_lax(image):
  rng = np.random.default_rng(2)
  x, w, g = (rng.standard_normal(s).astype(np.float32)
             for s in ((*image, 4), (3, 3, 4, 3), (*image, 3)))
  grads = lambda f: jax.jit(lambda x, w, g: jax.vjp(f, x, w)[1](g))(x, w, g)
  _assert_close(grads(layers.conv3x3), grads(layers._conv3x3))


def test_conv3x3_winograd_forward_and_data_gradient_match_lax():
  # Wide and tiled enough for winograd.applies, so the custom VJP's forward and data
  # gradient both take the Winograd path; the weight gradient is the GEMMs' as ever.
  x, g = np.random.default_rng(4).standard_normal((2, 2, 32, 32, 64)).astype(np.float32)
  w = (np.random.default_rng(5).standard_normal((3, 3, 64, 64)) / 24).astype(np.float32)
  assert winograd.applies(x.shape, w.shape, x.dtype)
  ours = lambda x, w: layers.conv3x3(x, w, True)
  # The transformed tiles' 16 GEMMs are in the traced program, no direct convolution.
  jaxpr = str(jax.make_jaxpr(lambda x, w, g: jax.vjp(ours, x, w)[1](g))(x, w, g))
  assert 'dot_general' in jaxpr and 'conv_general_dilated' not in jaxpr
  out_and_grads = lambda f: jax.jit(lambda x, w, g: (f(x, w), jax.vjp(f, x, w)[1](g)))(x, w, g)
  _assert_close(out_and_grads(ours), out_and_grads(layers._conv3x3))


def test_conv3x3_winograd_weight_gradient_matches_lax():
  x, g = np.random.default_rng(6).standard_normal((2, 2, 32, 32, 64)).astype(np.float32)
  w = (np.random.default_rng(7).standard_normal((3, 3, 64, 64)) / 24).astype(np.float32)
  grads = lambda f: jax.jit(lambda x, w, g: jax.vjp(f, x, w)[1](g))(x, w, g)
  ours = grads(lambda x, w: layers.conv3x3(x, w, False, True))
  taps = grads(lambda x, w: layers.conv3x3(x, w, False, False))
  np.testing.assert_array_equal(ours[0], taps[0])  # the data gradient is not touched
  assert not np.array_equal(ours[1], taps[1])      # the Winograd weight gradient ran
  _assert_close(ours, grads(layers._conv3x3))


def test_param_count_of_dfe_unchanged():
  from dpfcn_jax.models.dfe import DFE
  shapes = jax.eval_shape(lambda: DFE().init(jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3)),
                                             train=False))
  assert sum(np.prod(s.shape) for s in jax.tree.leaves(shapes)) == 31_031_680


def test_input_norm_none_is_the_papers_scaling():
  x = jax.random.uniform(jax.random.key(0), (2, 16, 16, 3))
  np.testing.assert_allclose(layers.normalize_input(x, 'none', jnp.float32), 2 * x - 1, rtol=1e-6)


def test_input_norm_tile_removes_each_bands_offset_and_mean():
  x = jax.random.uniform(jax.random.key(0), (2, 16, 16, 3))
  shifted = x + jnp.array([0.1, -0.2, 0.05])  # a per-band offset, as between two flights
  a, b = (layers.normalize_input(v, 'tile', jnp.float32) for v in (x, shifted))
  np.testing.assert_allclose(a, b, atol=1e-5)
  np.testing.assert_allclose(jnp.mean(a, axis=(1, 2)), 0.0, atol=1e-5)
  # A flat window stays flat instead of being blown up to its noise.
  flat = layers.normalize_input(jnp.full((1, 8, 8, 3), 0.3) + 1e-4 * x[:1, :8, :8],
                                'tile', jnp.float32)
  assert float(jnp.max(jnp.abs(flat))) < 0.01


def test_unknown_input_norm_is_a_config_error():
  from dpfcn_jax.errors import ConfigError  # pylint: disable=g-import-not-at-top
  with pytest.raises(ConfigError, match='unknown model.input_norm'):
    layers.normalize_input(jnp.zeros((1, 4, 4, 3)), 'scene', jnp.float32)


def _byte_dropout(rate, x, deterministic=False, seed=0):
  rngs = {'dropout': jax.random.key(seed, impl='rbg')}
  return layers.ByteDropout(rate).apply({}, x, deterministic=deterministic, rngs=rngs)


def test_byte_dropout_keeps_the_rounded_fraction_and_the_expectation():
  x = np.full((3, 37, 41, 5), 2.0, np.float32)  # 22755 elements: not a multiple of 4
  y = np.asarray(_byte_dropout(0.4, x))
  kept = y != 0
  # keep_prob 0.6 rounds to 154/256; kept values carry its inverse.
  np.testing.assert_allclose(y[kept], 2.0 * 256 / 154, rtol=1e-6)
  assert abs(kept.mean() - 154 / 256) < 0.01
  assert abs(y.mean() - 2.0) < 0.03
  # Four decisions per random word must not repeat in step: no channel pattern.
  assert all(abs(kept[..., c].mean() - 154 / 256) < 0.02 for c in range(5))
  assert not np.array_equal(kept, np.asarray(_byte_dropout(0.4, x, seed=1)) != 0)


def test_byte_dropout_edge_rates():
  x = np.arange(1.0, 25.0, dtype=np.float32).reshape(2, 3, 4, 1)
  np.testing.assert_array_equal(_byte_dropout(0.4, x, deterministic=True), x)
  np.testing.assert_array_equal(_byte_dropout(0.0, x), x)
  np.testing.assert_array_equal(_byte_dropout(1.0, x), np.zeros_like(x))


def test_dropout_bits_choose_the_module():
  assert isinstance(layers.dropout(0.4, 8), layers.ByteDropout)
  assert isinstance(layers.dropout(0.4, 32), nn.Dropout)
  with pytest.raises(layers.ConfigError, match='dropout_bits'):
    layers.dropout(0.4, 16)
