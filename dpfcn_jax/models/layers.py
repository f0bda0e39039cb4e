"""Convolution layers shared by every network; Xavier init as in Section II-C.

XLA:CPU computes convolution weight gradients an order of magnitude slower than
forward convolutions (jax-ml/jax#23783). With `fast_wgrad` (the default) the 3x3
convolution and the 2x2 up-convolution get their gradients from matrix products
instead, about 3x less time per DP-FCN training step on CPU. Parameters, initial
values and results are those of nn.Conv / nn.ConvTranspose, so checkpoints work
with either setting; accelerators, whose convolution gradients are fast, may
prefer fast_wgrad=False.

Those matrix products contract over every pixel of the batch (N*H*W rows, up to
~10^5) into a small (C_in, C_out) block; alone, XLA:CPU ran such a product 3-4x
slower than the same work as a batch of products over row chunks summed afterwards,
so `wgrad_dot` splits the rows (in a whole training step the gain was within the
host's noise: docs/RESULTS.md).
"""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from dpfcn_jax.errors import ConfigError
from dpfcn_jax.models import winograd as winograd_lib
from dpfcn_jax.models.compute import DROPOUT_BITS, Policy

xavier = nn.initializers.xavier_uniform()
_NHWC = ('NHWC', 'HWIO', 'NHWC')


# Rows per chunk in wgrad_dot: chunks of 4096-16384 rows were equally fast alone, and
# products of fewer rows than this (the deep levels) were as fast unchunked.
WGRAD_ROWS = 8192


def wgrad_dot(x, g):
  """sum over pixels of x[p, :]^T g[p, :], (..., C) and (..., O) -> (C, O), in row chunks."""
  c, o = x.shape[-1], g.shape[-1]
  rows = x.size // c
  chunks = max(1, rows // WGRAD_ROWS)
  while rows % chunks:
    chunks -= 1
  per_chunk = jnp.einsum('skc,sko->sco', x.reshape(chunks, -1, c), g.reshape(chunks, -1, o),
                         preferred_element_type=jnp.float32)
  return per_chunk.sum(0)


def _conv3x3(x, w, winograd=False):
  if winograd and winograd_lib.applies(x.shape, w.shape, x.dtype):
    return winograd_lib.winograd_conv3x3(x, w)
  return lax.conv_general_dilated(x, w, (1, 1), 'SAME', dimension_numbers=_NHWC)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv3x3(x, w, winograd=False, winograd_wgrad=False):
  """3x3 stride-1 SAME cross-correlation, NHWC input, HWIO kernel. winograd: forward
  and data gradient by winograd.py; winograd_wgrad: the weight gradient too."""
  return _conv3x3(x, w, winograd)


def _conv3x3_fwd(x, w, winograd, winograd_wgrad):
  del winograd_wgrad
  return _conv3x3(x, w, winograd), (x, w)


def _conv3x3_bwd(winograd, winograd_wgrad, res, g):
  x, w = res
  # Data gradient: a forward convolution of g with the flipped, in/out-swapped
  # kernel, which XLA:CPU runs at forward speed.
  dx = _conv3x3(g, jnp.swapaxes(w[::-1, ::-1], 2, 3), winograd)
  if winograd_wgrad and winograd_lib.applies(x.shape, w.shape, x.dtype):
    return dx, winograd_lib.winograd_wgrad3x3(x, g).astype(w.dtype)
  # Weight gradient: dw[a, b] = sum_{n,i,j} x[n,i,j,:]^T g[n,i+1-a,j+1-b,:], nine
  # GEMMs contracting N*H*W over windows of the zero-padded g. A loop, not nine
  # unrolled products: XLA otherwise copies all nine windows before the first
  # GEMM (9x the size of g per layer); the loop holds one at a time, same speed.
  gp = jnp.pad(g, ((0, 0), (1, 1), (1, 1), (0, 0)))

  def tap(_, t):
    window = lax.dynamic_slice(gp, (0, 2 - t // 3, 2 - t % 3, 0), g.shape)
    return None, wgrad_dot(x, window)

  dw = lax.scan(tap, None, jnp.arange(9))[1].reshape(w.shape)
  return dx, dw.astype(w.dtype)


conv3x3.defvjp(_conv3x3_fwd, _conv3x3_bwd)


def _conv3x3_hook(lhs, rhs, window_strides, padding, *, lhs_dilation=None,
                  rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                  precision=None, fast_wgrad=True, winograd=False, winograd_wgrad=False):
  """Stands in for lax.conv_general_dilated inside nn.Conv (same call)."""
  del dimension_numbers, precision  # nn.Conv's are NHWC/HWIO, default precision
  assert rhs.shape[:2] == (3, 3) and tuple(window_strides) == (1, 1)
  assert padding == 'SAME' and feature_group_count == 1
  assert all(d in (None, 1) for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
  if fast_wgrad:
    return conv3x3(lhs, rhs, winograd, winograd_wgrad)
  return _conv3x3(lhs, rhs, winograd)  # autodiff differentiates whichever it is


@jax.custom_vjp
def upconv2x2(x, k):
  """nn.ConvTranspose((2, 2), strides=2, 'VALID') as one GEMM plus a pixel shuffle.

  Output pixel (2i + a, 2j + b) is x[i, j] @ k[1 - a, 1 - b] (lax.conv_transpose
  without transpose_kernel flips the kernel). Both gradients are GEMMs too.
  """
  n, h, w, _ = x.shape
  y = jnp.einsum('nhwc,abco->nhawbo', x, k[::-1, ::-1])
  return y.reshape(n, 2 * h, 2 * w, k.shape[-1])


def _upconv2x2_fwd(x, k):
  return upconv2x2(x, k), (x, k)


def _upconv2x2_bwd(res, g):
  x, k = res
  n, h, w, c = x.shape
  o = k.shape[-1]
  g = g.reshape(n, h, 2, w, 2, o)
  dx = jnp.einsum('nhawbo,abco->nhwc', g, k[::-1, ::-1])
  # Taps last so that the weight gradient is one chunked (C, 4 * O) product.
  g = jnp.transpose(g, (0, 1, 3, 2, 4, 5)).reshape(n, h, w, 4 * o)
  dk = jnp.transpose(wgrad_dot(x, g).reshape(c, 2, 2, o), (1, 2, 0, 3))[::-1, ::-1]
  return dx, dk.astype(k.dtype)


upconv2x2.defvjp(_upconv2x2_fwd, _upconv2x2_bwd)


class Conv3x3(nn.Module):
  """3x3, stride 1, SAME padding convolution (Table I).

  compute.fast_wgrad: see above. compute.winograd: F(2x2, 3x3) for the layers where it
  pays (models/winograd.py), in the forward pass and, with fast_wgrad, the data
  gradient. compute.winograd_wgrad (with fast_wgrad): the weight gradient by Winograd.
  """
  features: int
  dtype: jnp.dtype = jnp.float32
  compute: Policy = Policy()

  @nn.compact
  def __call__(self, x):
    hook, p = None, self.compute
    if p.fast_wgrad or p.winograd:
      hook = functools.partial(_conv3x3_hook, fast_wgrad=p.fast_wgrad, winograd=p.winograd,
                               winograd_wgrad=p.winograd_wgrad)
    return nn.Conv(self.features, (3, 3), padding='SAME', kernel_init=xavier,
                   dtype=self.dtype, name='conv', conv_general_dilated=hook)(x)


class Conv1x1(nn.Module):
  features: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    return nn.Conv(self.features, (1, 1), kernel_init=xavier, dtype=self.dtype,
                   name='conv')(x)


class _UpConvGemm(nn.Module):
  """The parameters of nn.ConvTranspose (same names, shapes, init), upconv2x2 compute."""
  features: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    kernel = self.param('kernel', xavier, (2, 2, x.shape[-1], self.features), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros_init(), (self.features,), jnp.float32)
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    return upconv2x2(x, kernel) + bias


class UpConv2x2(nn.Module):
  """2x2 stride-2 transposed convolution (Table I 'Deconv'); compute.fast_wgrad: see above."""
  features: int
  dtype: jnp.dtype = jnp.float32
  compute: Policy = Policy()

  @nn.compact
  def __call__(self, x):
    if self.compute.fast_wgrad:
      return _UpConvGemm(self.features, self.dtype, name='conv')(x)
    return nn.ConvTranspose(self.features, (2, 2), strides=(2, 2), padding='VALID',
                            kernel_init=xavier, dtype=self.dtype, name='conv')(x)


class ByteDropout(nn.Module):
  """Inverted dropout drawing one random byte per element, four from each 32-bit word.

  flax's nn.Dropout draws a 32-bit word per element; at width 64 those draws were
  ~13% of a DP-FCN training step on XLA:CPU (docs/RESULTS.md). The keep
  probability is rounded to a multiple of 1/256 (0.6 -> 154/256 = 0.6016) and kept
  values are scaled by the rounded value, so the expectation is unchanged.
  """
  rate: float

  @nn.compact
  def __call__(self, x, *, deterministic: bool):
    threshold = round((1.0 - self.rate) * 256)
    if deterministic or threshold >= 256:
      return x
    if threshold <= 0:
      return jnp.zeros_like(x)
    words = jax.random.bits(self.make_rng('dropout'), (-(-x.size // 4),), jnp.uint32)
    byte = lax.bitcast_convert_type(words, jnp.uint8).reshape(-1)[:x.size].reshape(x.shape)
    return jnp.where(byte < threshold, x * (256.0 / threshold), 0).astype(x.dtype)


def dropout(rate, bits, name=None):
  """The dropout module for `bits` random bits per element: 8 ByteDropout, 32 nn.Dropout."""
  if bits not in DROPOUT_BITS:
    raise ConfigError(f'unknown compute.dropout_bits {bits!r}: expected 8 or 32')
  if bits == 8:
    return ByteDropout(rate, name=name)
  return nn.Dropout(rate, name=name)


NORMS = ('none', 'group')


def norm(mode, groups, dtype, name):
  """The feature normalisation after a conv: identity, or GroupNorm of `groups` groups.

  Not in the paper (issue 20 tries it). GroupNorm, not BatchNorm: its statistics are
  each window's own, so training blocks, sliding-window inference and any device count
  see the same layer, with no batch_stats to carry or average across devices.
  """
  if mode not in NORMS:
    raise ConfigError(f'unknown model.norm {mode!r}: expected {", ".join(NORMS)}')
  if mode == 'none':
    return lambda x: x
  def apply(x):
    if x.shape[-1] % groups:
      raise ConfigError(f'model.norm_groups {groups} does not divide a layer of '
                        f'{x.shape[-1]} channels')
    return nn.GroupNorm(num_groups=groups, dtype=dtype, name=name)(x)
  return apply


INPUT_NORMS = ('none', 'tile')
NORM_EPS = 0.02  # in [0, 1] units: a flat window (water, shadow) is not blown up to noise


def normalize_input(x, mode, dtype):
  """A [0, 1] image (N, H, W, B) to network input.

  'none' maps it to [-1, 1] (the paper feeds the images as they are). 'tile'
  standardises each band of each window by its own mean and spread: exposure,
  per-band gain and offset differ between dates (and sensors), and are then gone
  before the first conv. It is not in the paper; configs choose it.
  """
  if mode not in INPUT_NORMS:
    raise ConfigError(f'unknown model.input_norm {mode!r}: expected {", ".join(INPUT_NORMS)}')
  x = x.astype(jnp.float32)
  if mode == 'none':
    return (2.0 * x - 1.0).astype(dtype)
  mean = jnp.mean(x, axis=(1, 2), keepdims=True)
  std = jnp.std(x, axis=(1, 2), keepdims=True)
  return ((x - mean) / (std + NORM_EPS)).astype(dtype)


def max_pool2x2(x):
  return nn.max_pool(x, (2, 2), strides=(2, 2))
