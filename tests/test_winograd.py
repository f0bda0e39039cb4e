"""Winograd F(2x2, 3x3) must give lax's 3x3 SAME convolution, and only where it pays."""
import jax
import jax.numpy as jnp
from jax import lax
import numpy as np
import pytest

from dpfcn_jax.models import winograd

# fp32 rounding of the transforms: ~3e-6 at unit scale (the 1e-6 of a direct
# convolution is the floor); a wrong tap or sign is O(1).
TOL = 2e-5


def _pair(x_shape, out, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.standard_normal(x_shape).astype(np.float32)
  w = (rng.standard_normal((3, 3, x_shape[-1], out)) / np.sqrt(9 * x_shape[-1])).astype(np.float32)
  return x, w


def _lax(x, w):
  return lax.conv_general_dilated(x, w, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


@pytest.mark.parametrize('x_shape,out', [
    ((2, 8, 8, 16), 16),     # square
    ((3, 6, 10, 5), 7),      # odd channel counts, non-square, odd batch
    ((1, 2, 2, 4), 3),       # one tile: every output pixel sees the zero padding
])
def test_matches_lax_convolution(x_shape, out):
  x, w = _pair(x_shape, out)
  y = jax.jit(winograd.winograd_conv3x3)(x, w)
  np.testing.assert_allclose(y, _lax(x, w), rtol=TOL, atol=TOL)


@pytest.fixture
def chunk_bytes(monkeypatch):
  """Sets winograd.CHUNK_BYTES; traces cached under another value are dropped before and after."""
  def set_bytes(value):
    monkeypatch.setattr(winograd, 'CHUNK_BYTES', value)
    jax.clear_caches()
  yield set_bytes
  jax.clear_caches()


@pytest.mark.parametrize('budget,chunks', [(1, 6), (2 * 16 * 4 * 4 * 8 * 4, 3), (2**30, 1)])
def test_chunks_over_images_give_the_same_result(budget, chunks, chunk_bytes):
  chunk_bytes(budget)  # one image's transformed input is 16 * 4 * 4 * 8 * 4 bytes
  x, w = _pair((6, 8, 8, 8), 8, seed=1)
  jaxpr = str(jax.make_jaxpr(winograd.winograd_conv3x3)(x, w))
  # lax.map runs a scan whose trip count is the number of chunks.
  assert (f'length={chunks}' in jaxpr) if chunks > 1 else ('scan' not in jaxpr)
  np.testing.assert_allclose(winograd.winograd_conv3x3(x, w), _lax(x, w), rtol=TOL, atol=TOL)


def _lax_wgrad(x, g):
  w0 = jnp.zeros((3, 3, x.shape[-1], g.shape[-1]), jnp.float32)
  return jax.vjp(lambda w: _lax(x, w), w0)[1](g)[0]


@pytest.mark.parametrize('x_shape,out,budget', [
    ((2, 8, 8, 16), 16, 2**30),   # one pass
    ((3, 6, 10, 5), 7, 2**30),    # odd channel counts, non-square
    ((1, 2, 2, 4), 3, 2**30),     # one tile
    ((4, 8, 8, 8), 6, 1),         # a chunk per image, summed
])
def test_weight_gradient_matches_lax(x_shape, out, budget, chunk_bytes):
  chunk_bytes(budget)
  rng = np.random.default_rng(2)
  x = rng.standard_normal(x_shape).astype(np.float32)
  g = rng.standard_normal((*x_shape[:3], out)).astype(np.float32)
  dw = jax.jit(winograd.winograd_wgrad3x3)(x, g)
  # A sum over N*H*W products: scale the tolerance by its size.
  scale = np.sqrt(np.prod(x_shape[:3]))
  np.testing.assert_allclose(dw, _lax_wgrad(x, g), rtol=TOL, atol=TOL * scale)


def test_kernel_transform_is_g_w_gt():
  w = _pair((1, 2, 2, 3), 2)[1]
  g = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], np.float32)
  expected = np.einsum('ai,ijco,bj->abco', g, w, g).reshape(16, 3, 2)
  np.testing.assert_allclose(winograd.kernel_transform(w), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('x_shape,w_shape,dtype,applies', [
    ((8, 64, 64, 128), (3, 3, 128, 128), jnp.float32, True),   # DFE level 1, batch 8
    ((8, 16, 16, 1024), (3, 3, 1024, 512), jnp.float32, True),  # level 3 decoder: 512 tiles
    ((8, 8, 8, 512), (3, 3, 512, 1024), jnp.float32, False),   # bottom: 128 tiles
    ((8, 128, 128, 3), (3, 3, 3, 64), jnp.float32, False),     # first conv: 3 bands
    ((8, 64, 64, 128), (3, 3, 128, 128), jnp.bfloat16, False),
    ((8, 63, 64, 128), (3, 3, 128, 128), jnp.float32, False),  # odd side
])
def test_applies_only_where_it_pays(x_shape, w_shape, dtype, applies):
  assert winograd.applies(x_shape, w_shape, dtype) == applies
