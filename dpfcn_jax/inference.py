"""Whole-scene inference: overlapping windows, batched across local devices, blended.

Used by evaluation, validation during training and the predict CLI. The scene is
mirror-padded, cut into `tile` windows every `stride` pixels, run in fixed-size
batches (static shapes: one compilation), blended with `tiling.blend_weight` and
cropped back, so any scene size works and no seam shows.
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
  for i in range(0, len(starts), chunk):
    group = starts[i:i + chunk]
    full = group + [group[-1]] * (chunk - len(group))
    pairs = [read_window(r, c) for r, c in full]
    pre = np.stack([p[0] for p in pairs]).reshape(n_dev, batch_per_device, tile, tile, -1)
    post = np.stack([p[1] for p in pairs]).reshape(n_dev, batch_per_device, tile, tile, -1)
    prob, std = infer(params, pre, post, jax.random.fold_in(rng, i))
    prob = np.asarray(prob).reshape(chunk, tile, tile)
    std = np.asarray(std).reshape(chunk, tile, tile)
    for j, origin in enumerate(group):
      yield origin, prob[j], std[j]


def scene_probability(infer, params, pre, post, tile, stride, batch_per_device, rng=None):
  """Blended landslide probability (H, W) and uncertainty (H, W) of an in-memory scene."""
  h, w = pre.shape[:2]
  ph, pw = tiling.padded_size(h, tile, stride), tiling.padded_size(w, tile, stride)
  pre_p, post_p = tiling.pad_to(pre, ph, pw), tiling.pad_to(post, ph, pw)
  weight = tiling.blend_weight(tile, tile - stride)
  acc, acc_std, wsum = (np.zeros((ph, pw), np.float32) for _ in range(3))
  read = lambda r, c: (pre_p[r:r + tile, c:c + tile], post_p[r:r + tile, c:c + tile])
  rng = jax.random.key(0) if rng is None else rng
  for (r, c), p, s in run_windows(infer, params, read, window_grid(h, w, tile, stride), tile,
                                  batch_per_device, rng):
    acc[r:r + tile, c:c + tile] += p * weight
    acc_std[r:r + tile, c:c + tile] += s * weight
    wsum[r:r + tile, c:c + tile] += weight
  return (acc / wsum)[:h, :w], (acc_std / wsum)[:h, :w]
