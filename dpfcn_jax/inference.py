"""Whole-scene inference: overlapping windows, batched across local devices, blended.

Used by evaluation, validation during training and the predict CLI. The scene is
mirror-padded, cut into `tile` windows every `stride` pixels, run in fixed-size
batches (static shapes: one compilation), blended with `tiling.blend_weight` and
cropped back, so any scene size works and no seam shows. Rows stream through
(`stream_probability`): a scene larger than memory is read and written by bands.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from dpfcn_jax.data import augment, tiling


def local_copy(tree):
  """Host-local view of (possibly multi-process, replicated) arrays."""
  return jax.tree.map(lambda x: x.addressable_data(0) if isinstance(x, jax.Array) else x, tree)


def make_infer_fn(model, tta: bool = False, mc_samples: int = 0):
  """pmapped fn(params, pre, post, rng) -> (mean landslide probability, std over MC passes).

  pre/post: (local_devices, batch, tile, tile, bands). With `tta` the 8
  rotations/flips are averaged; with `mc_samples` > 0 dropout stays on and the
  per-pixel standard deviation of the passes is the uncertainty.
  """
  ks = range(augment.NUM_DIHEDRAL) if tta else (0,)

  def prob(params, pre, post, rng, train):
    out = []
    for k in ks:
      t = functools.partial(augment.dihedral, k=k, axes=(1, 2))
      logits = model.apply({'params': params}, t(pre), t(post), train=train,
                           rngs={'dropout': rng} if train else None)
      out.append(augment.inverse_dihedral(jax.nn.softmax(logits)[..., 1], k, axes=(1, 2)))
    return jnp.mean(jnp.stack(out), axis=0)

  def f(params, pre, post, rng):
    if mc_samples <= 0:
      p = prob(params, pre, post, rng, False)
      return p, jnp.zeros_like(p)
    rng = jax.random.fold_in(rng, jax.lax.axis_index('devices'))
    samples = jnp.stack([prob(params, pre, post, r, True)
                         for r in jax.random.split(rng, mc_samples)])
    return samples.mean(0), samples.std(0)

  return jax.pmap(f, axis_name='devices', in_axes=(None, 0, 0, None),
                  devices=jax.local_devices())


def window_grid(height, width, tile, stride):
  rows = tiling.window_starts(height, tile, stride)
  cols = tiling.window_starts(width, tile, stride)
  return [(r, c) for r in rows for c in cols]


def run_windows(infer, params, read_window, starts, tile, batch_per_device, rng):
  """Yields ((row, col), probability, std) for every window origin in `starts`.

  `read_window(row, col)` returns the (pre, post) pair of one window. The last
  batch is padded by repetition so every call has the same shape.
  """
  n_dev = jax.local_device_count()
  chunk = n_dev * batch_per_device
  pending = None
  for i in range(0, len(starts), chunk):
    group = starts[i:i + chunk]
    full = group + [group[-1]] * (chunk - len(group))
    pairs = [read_window(r, c) for r, c in full]
    pre = np.stack([p[0] for p in pairs]).reshape(n_dev, batch_per_device, tile, tile, -1)
    post = np.stack([p[1] for p in pairs]).reshape(n_dev, batch_per_device, tile, tile, -1)
    out = infer(params, pre, post, jax.random.fold_in(rng, i))
    # Dispatch is asynchronous: the accelerator runs this batch while the caller
    # blends the previous one and the next one is cut.
    if pending is not None:
      yield from _unbatch(*pending, chunk, tile)
    pending = group, out
  if pending is not None:
    yield from _unbatch(*pending, chunk, tile)


def _unbatch(group, out, chunk, tile):
  prob, std = (np.asarray(a).reshape(chunk, tile, tile) for a in out)
  for j, origin in enumerate(group):
    yield origin, prob[j], std[j]


def mirror_index(length: int, size: int) -> np.ndarray:
  """Source position of each of `size` positions of `length` samples mirror-padded at
  the end, as `tiling.pad_to` pads (numpy 'symmetric', repeated if need be)."""
  m = np.arange(size) % (2 * length)
  return np.where(m < length, m, 2 * length - 1 - m)


def stream_probability(infer, params, read_rows, height, width, tile, stride,
                       batch_per_device, rng, progress=None):
  """Yields (row0, probability, std) for bands of finished rows, top to bottom.

  `read_rows(index)` returns the (pre, post) scene rows `index` (an int array), each
  (len(index), width, bands) float32. Only the input rows of the windows in one
  batch and `tile` rows of blending accumulators are held, so memory does not grow
  with the scene's height. Rows are final once the next row of windows starts
  below them; `progress(done, total)` is called after every window.
  """
  ph, pw = tiling.padded_size(height, tile, stride), tiling.padded_size(width, tile, stride)
  src_rows, src_cols = mirror_index(height, ph), mirror_index(width, pw)
  weight = tiling.blend_weight(tile, tile - stride)
  starts = window_grid(height, width, tile, stride)
  bands = {}

  def read_window(r, c):
    if r not in bands:
      bands.clear()  # windows come row by row; a batch keeps views of what it needs
      bands[r] = read_rows(src_rows[r:r + tile])
    pre, post = bands[r]
    if c + tile <= width:  # a view; only windows over the right edge need mirrored columns
      return pre[:, c:c + tile], post[:, c:c + tile]
    cols = src_cols[c:c + tile]
    return pre[:, cols], post[:, cols]

  acc, acc_std, wsum = (np.zeros((tile, pw), np.float32) for _ in range(3))
  top = 0

  def finish(n):
    """The first n accumulator rows as output (cropped to the scene); shifts the rest up."""
    out = top, (acc[:n] / wsum[:n])[:height - top, :width], \
        (acc_std[:n] / wsum[:n])[:height - top, :width]
    for a in (acc, acc_std, wsum):
      a[:-n] = a[n:].copy()
      a[-n:] = 0
    return out

  for done, ((r, c), p, s) in enumerate(run_windows(infer, params, read_window, starts, tile,
                                                    batch_per_device, rng), 1):
    if r > top:  # window rows start above the scene's last row: nothing emitted is empty
      yield finish(r - top)
      top = r
    acc[:, c:c + tile] += p * weight
    acc_std[:, c:c + tile] += s * weight
    wsum[:, c:c + tile] += weight
    if progress is not None:
      progress(done, len(starts))
  yield finish(tile)


def scene_probability(infer, params, pre, post, tile, stride, batch_per_device, rng=None):
  """Blended landslide probability (H, W) and uncertainty (H, W) of an in-memory scene."""
  h, w = pre.shape[:2]
  rng = jax.random.key(0) if rng is None else rng
  bands = list(stream_probability(infer, params, lambda i: (pre[i], post[i]), h, w, tile,
                                  stride, batch_per_device, rng))
  return np.concatenate([b[1] for b in bands]), np.concatenate([b[2] for b in bands])
