"""3x3 SAME convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray, 2016).

Each 2x2 output tile comes from a 4x4 input tile as A^T [(G g G^T) * (B^T d B)] A:
16 multiplications per tile and channel pair instead of 36, the products being 16
GEMMs over all tiles. XLA:CPU's direct convolutions run at 100-145 GFLOP/s on the
2-core host; the GEMMs here do 2.25x less work, and the input and output transforms
are elementwise fusions. The DP-FCN inference call got 5-13% faster than with direct
convolutions (three alternated rounds), and another 8-17% once the tiles were kept
apart (_tiles_conv), for 3.4x the temporary memory (719 MiB at batch 8) and a 14 s
compile instead of 1 s (docs/RESULTS.md). Outputs differ from lax's convolution by
rounding only (~3e-6 at unit scale, pinned in tests/test_winograd.py). F(4x4, 3x3),
4x fewer multiplications, made the whole call slower here and is not offered.

The weight gradient of the same convolution is G^T [sum over tiles of (B^T d B) *
(A dy A^T)] G: 16 GEMMs contracting over the tiles, 2.25x fewer multiplications than
layers.py's nine tap products, and each operand packed once rather than nine times.
In training it made the DP-FCN step 8-10% faster (docs/RESULTS.md).
"""
import jax.numpy as jnp
from jax import lax
import numpy as np

# F(2x2, 3x3) in Lavin & Gray's notation; written out so that XLA sees additions of
# slices (one loop fusion each) rather than products with small constant matrices.
_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]])
_G = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]])
_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]])

# It pays where the GEMMs dominate the transforms: channels this wide or wider...
MIN_CHANNELS = 64
# ...and enough tiles per call to amortise the per-call kernel transform, which
# costs as much as a GEMM over 1/16 of the tiles (8x8 maps at batch 8 lost, 16x16 won).
MIN_TILES = 512
# Transformed input per chunk of images (a lax.map over chunks): at 128x128 a batch
# of 8 transforms to 134 MiB, and unchunked the inference call was ~10% slower.
# 16-64 MiB chunks timed alike.
CHUNK_BYTES = 32 * 2**20


def _combine(coefs, terms):
  """sum_i coefs[i] * terms[i], skipping zeros and multiplications by +-1."""
  out = None
  for c, t in zip(coefs, terms):
    if c == 0:
      continue
    t = t if c == 1 else -t if c == -1 else c * t
    out = t if out is None else out + t
  return out


def applies(x_shape, w_shape, dtype) -> bool:
  """Whether winograd_conv3x3 is used for this input: f32, even sides, wide, many tiles."""
  n, h, w, c = x_shape
  return (jnp.dtype(dtype) == jnp.float32 and h % 2 == 0 and w % 2 == 0
          and min(c, w_shape[-1]) >= MIN_CHANNELS and n * h * w // 4 >= MIN_TILES)


def kernel_transform(w):
  """G g G^T for a (3, 3, C, O) kernel -> (16, C, O)."""
  rows = [_combine(_G[a], [w[i] for i in range(3)]) for a in range(4)]
  return jnp.stack([_combine(_G[b], [r[j] for j in range(3)]) for r in rows for b in range(4)])


def _input_tiles(x):
  """B^T d B for the 4x4 tile d of every 2x2 output tile of x (N, H, W, C): 16 arrays
  (N, H / 2, W / 2, C), kept apart (see _tiles_conv)."""
  n, h, w, c = x.shape
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  rows = [xp[:, i:i + h:2] for i in range(4)]             # tile row i of every tile
  rows = [_combine(_BT[k], rows) for k in range(4)]
  v = []
  for r in rows:
    cols = [r[:, :, j:j + w:2] for j in range(4)]
    v.extend(_combine(_BT[l], cols) for l in range(4))
  return v


def _input_transform(x):
  """_input_tiles as one array (16, tiles, C)."""
  return jnp.stack(_input_tiles(x)).reshape(16, -1, x.shape[-1])


def _tiles_wgrad(x, g):
  """sum over tiles of (B^T d B) * (A dy A^T): (16, C, O) for x (N, H, W, C), g (N, H, W, O)."""
  n, h, w, o = g.shape
  dy = [[g[:, i::2, j::2] for j in range(2)] for i in range(2)]   # 2x2 tiles of g
  rows = [[_combine(_AT[:, k], [dy[i][j] for i in range(2)]) for j in range(2)]
          for k in range(4)]
  z = jnp.stack([_combine(_AT[:, l], r) for r in rows for l in range(4)])
  z = z.reshape(16, n * (h // 2) * (w // 2), o)
  return lax.dot_general(_input_transform(x), z, (((1,), (1,)), ((0,), (0,))),
                         preferred_element_type=x.dtype)


def _images_per_chunk(x, out_channels):
  """The most images of x, dividing its batch, whose transformed tiles fit CHUNK_BYTES."""
  n, h, w, c = x.shape
  per_image = 16 * (h // 2) * (w // 2) * max(c, out_channels) * x.dtype.itemsize
  per_chunk = max(1, min(n, CHUNK_BYTES // per_image))
  while n % per_chunk:
    per_chunk -= 1
  return per_chunk


def winograd_wgrad3x3(x, g):
  """The kernel gradient of winograd_conv3x3 (and of lax's convolution):
  dw[a, b] = sum_{n,i,j} xpad[n, i + a, j + b, :]^T g[n, i, j, :], as G^T M G with M
  from 16 GEMMs over the tiles (Lavin & Gray's F(3x3, 2x2) roles)."""
  n, c = x.shape[0], x.shape[-1]
  per_chunk = _images_per_chunk(x, g.shape[-1])
  if per_chunk == n:
    m = _tiles_wgrad(x, g)
  else:
    split = lambda t: t.reshape((n // per_chunk, per_chunk) + t.shape[1:])
    m = lax.map(lambda xg: _tiles_wgrad(*xg), (split(x), split(g))).sum(0)
  m = m.reshape(4, 4, c, -1)
  rows = [_combine(_G[:, a], [m[k] for k in range(4)]) for a in range(3)]
  return jnp.stack([jnp.stack([_combine(_G[:, b], [r[l] for l in range(4)])
                               for b in range(3)]) for r in rows])


def _tiles_conv(x, u):
  """The convolution of x (N, H, W, C) with a transformed kernel u (16, C, O).

  Sixteen separate products rather than one batched product of stacked tiles: XLA:CPU
  writes a 16-way stack as a slow concatenation, and the separate form made the DP-FCN
  inference call 8-17% faster (docs/RESULTS.md).
  """
  n, h, w, _ = x.shape
  m = [jnp.einsum('nijc,co->nijo', v, u[k]) for k, v in enumerate(_input_tiles(x))]
  y = []
  for p in range(2):
    r = [_combine(_AT[p], [m[4 * k + l] for k in range(4)]) for l in range(4)]
    y.append(jnp.stack([_combine(_AT[q], r) for q in range(2)], axis=3))  # (n, i, j, q, o)
  return jnp.stack(y, axis=2).reshape(n, h, w, -1)  # (n, i, p, j, q, o): pixel (2i + p, 2j + q)


def winograd_conv3x3(x, w):
  """Same result as lax.conv_general_dilated(x, w, (1, 1), 'SAME') in NHWC/HWIO."""
  n, h, wd, c = x.shape
  u = kernel_transform(w)
  per_chunk = _images_per_chunk(x, w.shape[-1])
  if per_chunk == n:
    return _tiles_conv(x, u)
  chunks = x.reshape(n // per_chunk, per_chunk, h, wd, c)
  return lax.map(lambda xc: _tiles_conv(xc, u), chunks).reshape(n, h, wd, -1)
