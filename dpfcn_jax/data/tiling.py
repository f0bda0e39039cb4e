"""Block and window geometry: padding, window starts, blending.

Section II-C: scenes are cut into 128x128 blocks. Edges are padded by mirroring;
padded pixels carry valid=False so they never count in the loss or the metrics.
"""
import numpy as np

PAD_MODE = 'symmetric'  # mirrored context looks like terrain; zeros would look like a dark change


def padded_size(length: int, tile: int, stride: int) -> int:
  """Smallest length >= `length` covered exactly by windows of `tile` every `stride`."""
  if length <= tile:
    return tile
  return tile + -(-(length - tile) // stride) * stride


def window_starts(length: int, tile: int, stride: int) -> list:
  return list(range(0, padded_size(length, tile, stride) - tile + 1, stride))


def pad_to(array, height: int, width: int):
  """Mirror-pads the two leading axes of `array` up to (height, width)."""
  pads = [(0, height - array.shape[0]), (0, width - array.shape[1])]
  pads += [(0, 0)] * (array.ndim - 2)
  return np.pad(array, pads, mode=PAD_MODE)


def blend_weight(tile: int, overlap: int) -> np.ndarray:
  """(tile, tile) weight that falls smoothly to a small floor over the overlap band.

  Overlapping windows are averaged with this weight, so a window's border pixels,
  which lack context, count least and no seam appears where windows meet. The
  floor keeps scene-edge pixels, seen by one window only, well defined.
  """
  ramp = np.ones(tile, np.float64)
  if overlap > 0:
    t = (np.arange(overlap) + 0.5) / overlap
    edge = 0.5 - 0.5 * np.cos(np.pi * t)  # raised cosine from ~0 to ~1
    ramp[:overlap] = edge
    ramp[-overlap:] = edge[::-1]
  ramp = np.maximum(ramp, 1e-3)
  return np.outer(ramp, ramp).astype(np.float32)
