"""Augmentations applied identically to pre, post and mask (Section III-B: "rotation").

The 8 elements of the dihedral group (4 rotations x optional flip) work on numpy
and jax arrays alike, so the same code serves training blocks and test-time
augmentation.
"""
import numpy as np

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
