"""Block and window geometry: padding, regular blocks, overlapping windows, blending.

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


def to_blocks(array, tile: int):
  """(H, W, ...) -> (n_rows * n_cols, tile, tile, ...) regular blocks, edges padded."""
  h, w = array.shape[:2]
  ph, pw = padded_size(h, tile, tile), padded_size(w, tile, tile)
  a = pad_to(array, ph, pw)
  a = a.reshape(ph // tile, tile, pw // tile, tile, *a.shape[2:])
  return np.swapaxes(a, 1, 2).reshape(-1, tile, tile, *a.shape[4:])


def from_blocks(blocks, height: int, width: int):
  """Inverse of `to_blocks`: stitches blocks and crops the padding away."""
  tile = blocks.shape[1]
  nr, nc = padded_size(height, tile, tile) // tile, padded_size(width, tile, tile) // tile
  a = blocks.reshape(nr, nc, tile, tile, *blocks.shape[3:])
  a = np.swapaxes(a, 1, 2).reshape(nr * tile, nc * tile, *blocks.shape[3:])
  return a[:height, :width]


def valid_blocks(height: int, width: int, tile: int):
  """Per-block bool masks of the pixels that lie inside the scene."""
  inside = np.zeros((padded_size(height, tile, tile), padded_size(width, tile, tile)), bool)
  inside[:height, :width] = True
  return to_blocks(inside, tile)


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
