"""Augmentations applied identically to pre, post and mask (Section III-B: "rotation").

The 8 elements of the dihedral group (4 rotations x optional flip) work on numpy
and jax arrays alike, so the same code serves training blocks and test-time
augmentation. Beyond the paper (`Jitter`): scale and arbitrary-angle rotation of
the block, and per-date blur, noise and histogram matching.
"""
import dataclasses

import numpy as np
from scipy import ndimage  # blur only

NUM_DIHEDRAL = 8


def dihedral(x, k: int, axes=(0, 1)):
  """Rotates by 90*(k % 4) degrees, then mirrors the second axis if k >= 4."""
  x = x if k % 4 == 0 else _rot90(x, k % 4, axes)
  return _flip(x, axes[1]) if k >= 4 else x


def inverse_dihedral(x, k: int, axes=(0, 1)):
  """Undoes `dihedral(., k)`."""
  x = _flip(x, axes[1]) if k >= 4 else x
  return x if k % 4 == 0 else _rot90(x, -(k % 4), axes)


def _rot90(x, k, axes):
  if isinstance(x, np.ndarray):
    return np.rot90(x, k, axes)
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  return jnp.rot90(x, k, axes)


def _flip(x, axis):
  return np.flip(x, axis) if isinstance(x, np.ndarray) else x[(slice(None),) * axis + (slice(None, None, -1),)]


def photometric(image, rng: np.random.Generator, strength: float):
  """Random per-band gain, offset and gamma: mimics a seasonal or illumination shift.

  Applied to one date at a time so the network learns that colour shifts
  between dates are not landslides. `strength` 0 returns the image unchanged.
  """
  if strength <= 0:
    return image
  bands = image.shape[-1]
  gain = 1.0 + strength * rng.uniform(-0.3, 0.3, bands)
  offset = strength * rng.uniform(-0.08, 0.08, bands)
  gamma = np.exp(strength * rng.uniform(-0.3, 0.3))
  out = np.clip(image, 0.0, 1.0) ** gamma * gain + offset
  return np.clip(out, 0.0, 1.0).astype(image.dtype)


@dataclasses.dataclass(frozen=True)
class Jitter:
  """Augmentations beyond the paper's rotations (configs/default.py, data.*): all off
  by default. Each block draws its own values from its own seed."""
  scale: float = 0.0            # scale drawn log-uniformly in [1/(1+s), 1+s]
  rotate_any: bool = False      # angle uniform in [0, 360) degrees
  blur: float = 0.0             # chance per date of a Gaussian blur
  noise: float = 0.0            # most std of per-date Gaussian noise
  histogram_match: float = 0.0  # chance per block of matching one date to the other

  @classmethod
  def from_config(cls, data_config):
    return cls(data_config.scale_jitter, data_config.rotate_any, data_config.blur,
               data_config.noise, data_config.histogram_match)

  @property
  def geometric(self):
    return self.scale > 0 or self.rotate_any

  @property
  def active(self):
    return self.geometric or self.blur > 0 or self.noise > 0 or self.histogram_match > 0


def warp_params(rng, jitter: Jitter):
  """(scale, angle in radians) of one block: source pixels per output pixel, rotation."""
  scale = float(np.exp(rng.uniform(-1, 1) * np.log1p(jitter.scale))) if jitter.scale else 1.0
  angle = float(rng.uniform(0, 2 * np.pi)) if jitter.rotate_any else 0.0
  return scale, angle


def warp_window(shape, center, tile, scale, angle):
  """Where the block rotated by `angle` and zoomed by `scale` around `center` (row, col,
  in pixels) lies in an array of `shape`: the window (slices) holding it, and each
  output pixel's source (rows, cols) inside that window."""
  half = tile / 2
  # The source window the rotated, scaled block lies in, plus the bilinear margin.
  reach = int(np.ceil(scale * half * (abs(np.cos(angle)) + abs(np.sin(angle))))) + 2
  r0, c0 = max(int(center[0]) - reach, 0), max(int(center[1]) - reach, 0)
  r1, c1 = min(int(center[0]) + reach + 1, shape[0]), min(int(center[1]) + reach + 1, shape[1])
  u = np.arange(tile) - half + 0.5
  du, dv = np.meshgrid(u, u, indexing='ij')
  cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
  rows = center[0] - r0 - 0.5 + cos * du - sin * dv
  cols = center[1] - c0 - 0.5 + sin * du + cos * dv
  return (slice(r0, r1), slice(c0, c1)), rows, cols


class Resample:
  """Samples arrays of one window's shape at fractional (rows, cols): bilinearly or at
  the nearest pixel, 0 outside the window (so a sampled valid mask marks those pixels
  invalid). Indices and weights are found once and serve every array of the block."""

  def __init__(self, shape, rows, cols):
    h, w = shape[:2]
    self._shape = rows.shape
    r, c = np.rint(rows).astype(np.intp), np.rint(cols).astype(np.intp)
    self._near = self._flat(r, c, h, w)
    self._near_in = ((r >= 0) & (r < h) & (c >= 0) & (c < w)).ravel()
    r, c = np.floor(rows).astype(np.intp), np.floor(cols).astype(np.intp)
    fr, fc = (rows - r).astype(np.float32), (cols - c).astype(np.float32)
    self._taps = []
    for dr, wr in ((0, 1 - fr), (1, fr)):
      for dc, wc in ((0, 1 - fc), (1, fc)):
        rr, cc = r + dr, c + dc
        inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        self._taps.append((self._flat(rr, cc, h, w), (wr * wc * inside).ravel()))

  @staticmethod
  def _flat(r, c, h, w):
    return (np.clip(r, 0, h - 1) * w + np.clip(c, 0, w - 1)).ravel()

  def _rows(self, x):
    return np.ascontiguousarray(x).reshape(x.shape[0] * x.shape[1], -1)

  def linear(self, x):
    flat = self._rows(x)
    out = sum(weight[:, None] * np.take(flat, idx, axis=0) for idx, weight in self._taps)
    return out.astype(x.dtype).reshape(self._shape + x.shape[2:])

  def nearest(self, x):
    out = np.take(self._rows(x), self._near, axis=0) * self._near_in[:, None]
    return out.astype(x.dtype).reshape(self._shape + x.shape[2:])


def blur(image, sigma):
  """Gaussian blur of each band: a sharper or softer sensor, or defocus, on one date."""
  return ndimage.gaussian_filter(image, (sigma, sigma, 0), mode='reflect').astype(image.dtype)


def add_noise(image, rng, std):
  noise = rng.standard_normal(image.shape, dtype=np.float32) * np.float32(std)
  return np.clip(image + noise, 0.0, 1.0).astype(image.dtype)


def match_histograms(source, reference, valid):
  """`source` with each band's values mapped onto `reference`'s distribution over the
  valid pixels (exact histogram specification by ranks): a colour transfer between
  dates, so a season's shift is no change."""
  out = source.copy()
  keep = valid > 0
  if keep.sum() < 2:
    return out
  for b in range(source.shape[-1]):
    src, ref = source[..., b][keep], np.sort(reference[..., b][keep])
    matched = np.empty_like(src)
    matched[np.argsort(src, kind='stable')] = ref
    out[..., b][keep] = matched
  return out
