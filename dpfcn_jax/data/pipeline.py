"""Sites of a split, and the deterministic stream of training batches drawn from them.

The batch of step s is a pure function of (seed, s): a restarted or pre-empted run
sees exactly the data an uninterrupted one would. Each process builds only its own
slice of the global batch.
"""
import dataclasses
import logging
import pathlib

import numpy as np

from dpfcn_jax.data import augment, io, synthetic, tiling
from dpfcn_jax.errors import ConfigError

SPLITS = ('train', 'val', 'test')
# Most distinct values per date for which photometric jitter is a table look-up: 8-bit
# imagery has 256, and a table this size costs a twelfth of jittering a 128-px block.
MAX_TABLE_VALUES = 4096

log = logging.getLogger(__name__)


def site_folders(data_config, split):
  """Folders of a split: those the config lists, else every folder in ROOT/<split>."""
  if split not in SPLITS:
    raise ConfigError(f'unknown split {split!r}: expected one of {", ".join(SPLITS)}')
  if not data_config.root:
    raise ConfigError('data.root is empty: set --config.data.root=DIR')
  root = pathlib.Path(data_config.root)
  listed = tuple(data_config[f'{split}_sites'])
  if listed:
    return [root / s for s in listed]
  folders = sorted(p for p in (root / split).glob('*') if p.is_dir())
  if not folders:
    raise ConfigError(f'{root / split}: no site folders for split {split!r}')
  return folders


def synthetic_sites(data_config, split):
  """Scenes of a split: those its `<split>_sites` field names, else all of the split's.

  A scene is named `<split>-<index>` after the split whose seed range generates it, so
  a listed split may take scenes of another (cross-validation folds mix train and val).
  """
  if split not in SPLITS:
    raise ConfigError(f'unknown split {split!r}: expected one of {", ".join(SPLITS)}')
  cfg = data_config.synthetic
  names = tuple(data_config[f'{split}_sites']) or [
      f'{split}-{i:02d}' for i in range(cfg.num_scenes[split])]
  return [synthetic_site(cfg, name, f'data.{split}_sites') for name in names]


def synthetic_site(cfg, name, field):
  source, _, index = name.rpartition('-')
  if source not in SPLITS or not index.isdigit() or int(index) >= cfg.num_scenes[source]:
    raise ConfigError(f'{field}: {name!r} is not a synthetic scene: expected <split>-<index> '
                      'with index below data.synthetic.num_scenes[split]')
  seed = cfg.seed_offset[source] + int(index)
  h, w = synthetic.scene_shape(seed, cfg.min_side, cfg.max_side)
  s = synthetic.generate_scene(seed, h, w)
  pre, post = (s[k].astype(np.float32) / 255.0 for k in ('pre', 'post'))
  return io.Site(name, pre, post, s['mask'], np.ones((h, w), bool), None)


def load_split(data_config, split):
  """All sites of `split` (validated, in memory); the test split may be cropped."""
  if data_config.kind == 'synthetic':
    sites = synthetic_sites(data_config, split)
  elif data_config.kind == 'files':
    sites = [io.load_site(f, data_config.bands, data_config.mask_threshold)
             for f in site_folders(data_config, split)]
  else:
    raise ConfigError(f'unknown data.kind {data_config.kind!r}: expected files or synthetic')
  if not sites:
    raise ConfigError(f'split {split!r} has no sites')
  if split == 'test' and data_config.test_crop:
    rows, cols = data_config.test_crop
    sites = [dataclasses.replace(s, pre=s.pre[:rows, :cols], post=s.post[:rows, :cols],
                                 mask=s.mask[:rows, :cols], valid=s.valid[:rows, :cols])
             for s in sites]
  return sites


def sampler(sites, config):
  """The training BlockSampler of `config` (its data fields and seed) over `sites`."""
  d = config.data
  return BlockSampler(sites, d.tile, config.seed, d.sampling, d.augment, d.photometric,
                      d.positive_fraction, augment.Jitter.from_config(d))


class BlockSampler:
  """Training blocks of `tile` x `tile` pixels from a list of sites.

  'grid' sampling uses the regular blocks of Section II-C, shuffled per epoch;
  'random' draws blocks at random offsets (more variety from few scenes). With
  `positive_fraction` > 0 (random sampling only), that share of each batch is drawn
  around a random landslide pixel instead, as nnU-Net oversamples foreground: scars
  cover ~5% of a scene, so uniform blocks spend most of each step on easy background.
  `jitter` (augment.Jitter) adds the augmentations beyond the paper, drawn from a stream
  of their own so that without them every block is what it was before they existed.
  """

  def __init__(self, sites, tile, seed, sampling='grid', augment_mode='dihedral',
               photometric=0.0, positive_fraction=0.0, jitter=augment.Jitter()):
    if sampling not in ('grid', 'random'):
      raise ConfigError(f'unknown data.sampling {sampling!r}: expected grid or random')
    if not 0.0 <= positive_fraction <= 1.0:
      raise ConfigError(f'data.positive_fraction {positive_fraction} is not in [0, 1]')
    if positive_fraction and sampling != 'random':
      raise ConfigError("data.positive_fraction needs data.sampling = 'random'")
    if augment_mode not in ('dihedral', 'rotate', 'none'):
      raise ConfigError(f'unknown data.augment {augment_mode!r}')
    self.tile, self.seed, self.sampling = tile, seed, sampling
    self.augment_mode, self.photometric = augment_mode, photometric
    self.positive_fraction, self.jitter = positive_fraction, jitter
    # Padded copies so every block, including edge blocks, is a plain slice.
    self.sites = []
    for s in sites:
      h, w = s.mask.shape
      ph, pw = tiling.padded_size(h, tile, tile), tiling.padded_size(w, tile, tile)
      valid = np.zeros((ph, pw), bool)
      valid[:h, :w] = s.valid
      self.sites.append((tiling.pad_to(s.pre, ph, pw), tiling.pad_to(s.post, ph, pw),
                         tiling.pad_to(s.mask, ph, pw), valid))
    self.blocks = [(i, r, c) for i, (_, _, _, v) in enumerate(self.sites)
                   for r in range(0, v.shape[0], tile) for c in range(0, v.shape[1], tile)
                   if v[r:r + tile, c:c + tile].any()]
    if not self.blocks:
      raise ConfigError('the training sites hold no valid pixels')
    areas = np.array([v.sum() for *_, v in self.sites], np.float64)
    self.site_p = areas / areas.sum()
    # Flat indices of valid landslide pixels per site (padded width), for oversampling.
    self.positives = [np.flatnonzero((m > 0) & v) if positive_fraction else np.empty(0, int)
                      for _, _, m, v in self.sites]
    counts = np.array([len(p) for p in self.positives], np.float64)
    if positive_fraction and not counts.sum():
      log.warning('data.positive_fraction is %s but the training sites hold no landslide '
                  'pixels: every block is drawn uniformly', positive_fraction)
      self.positive_fraction = 0.0
    self.positive_p = counts / counts.sum() if counts.sum() else None
    self.tables = [tuple(_value_table(x) if photometric > 0 else None for x in (a, b))
                   for a, b, _, _ in self.sites]

  def _grid_origins(self, positions):
    n = len(self.blocks)
    epochs = positions // n
    out = []
    perms = {e: np.random.default_rng([self.seed, 0, int(e)]).permutation(n)
             for e in np.unique(epochs)}
    for p, e in zip(positions, epochs):
      out.append(self.blocks[perms[e][p % n]])
    return out

  def _random_origins(self, rng, count):
    out = []
    for i in rng.choice(len(self.sites), size=count, p=self.site_p):
      v = self.sites[i][3]
      r = int(rng.integers(0, v.shape[0] - self.tile + 1))
      c = int(rng.integers(0, v.shape[1] - self.tile + 1))
      out.append((int(i), r, c))
    return out

  def _positive_origins(self, rng, count):
    """Blocks holding a random landslide pixel at a uniformly random place in the block."""
    out = []
    for i in rng.choice(len(self.sites), size=count, p=self.positive_p):
      h, w = self.sites[i][3].shape
      y, x = divmod(int(rng.choice(self.positives[i])), w)
      r = min(max(y - int(rng.integers(0, self.tile)), 0), h - self.tile)
      c = min(max(x - int(rng.integers(0, self.tile)), 0), w - self.tile)
      out.append((int(i), r, c))
    return out

  def batch(self, step, global_batch, process_index=0, process_count=1):
    """This process's slice of the global batch of `step` as a dict of numpy arrays."""
    if global_batch % process_count:
      raise ConfigError(f'batch_size {global_batch} is not divisible by {process_count} processes')
    rng = np.random.default_rng([self.seed, 1, int(step)])
    if self.sampling == 'grid':
      origins = self._grid_origins(np.arange(step * global_batch, (step + 1) * global_batch))
    else:
      n_pos = int(round(self.positive_fraction * global_batch))
      origins = (self._positive_origins(rng, n_pos)
                 + self._random_origins(rng, global_batch - n_pos))
    ks = rng.integers(0, augment.NUM_DIHEDRAL if self.augment_mode == 'dihedral' else 4,
                      global_batch) if self.augment_mode != 'none' else np.zeros(global_batch, int)
    jitter_seeds = rng.integers(0, 2**31, (global_batch, 2))
    # Their own stream, so the blocks of a config without them are those of before.
    extra_seeds = (np.random.default_rng([self.seed, 2, int(step)]).integers(
        0, 2**31, global_batch) if self.jitter.active else [None] * global_batch)
    local = global_batch // process_count
    lo = process_index * local
    t, bands = self.tile, self.sites[0][0].shape[-1]
    # Filled in place: no per-block list, stack or dtype copy.
    out = {'pre': np.empty((local, t, t, bands), np.float32),
           'post': np.empty((local, t, t, bands), np.float32),
           'label': np.empty((local, t, t), np.int32),
           'valid': np.empty((local, t, t), np.float32)}
    for j, ((i, r, c), k, js, xs) in enumerate(zip(
        origins[lo:lo + local], ks[lo:lo + local], jitter_seeds[lo:lo + local],
        extra_seeds[lo:lo + local])):
      window, k = (slice(r, r + t), slice(c, c + t)), int(k)
      xrng = np.random.default_rng(xs) if xs is not None else None
      if self.jitter.geometric:
        self._warp_into(out, j, i, (r + t / 2, c + t / 2), js, k, xrng)
      else:
        pre, post, mask, valid = self.sites[i]
        for key, image, table, seed in zip(('pre', 'post'), (pre, post), self.tables[i], js):
          self._jitter_into(out[key][j], image, table, window, seed, k)
        out['label'][j] = augment.dihedral(mask[window], k)
        out['valid'][j] = augment.dihedral(valid[window], k)
      if xrng is not None:
        self._degrade(out, j, xrng)
    return out

  def _warp_into(self, out, j, i, center, seeds, k, rng):
    """Block j cut rotated and scaled around `center` in site i, colour-jittered and
    dihedral(k). The jitter is elementwise, so it runs on the window's codes by table
    look-up as for plain blocks, before the bilinear sampling."""
    pre, post, mask, valid = self.sites[i]
    window, rows, cols = augment.warp_window(valid.shape, center, self.tile,
                                             *augment.warp_params(rng, self.jitter))
    resample = augment.Resample(valid[window].shape, rows, cols)
    for key, image, table, seed in zip(('pre', 'post'), (pre, post), self.tables[i], seeds):
      if table is None:
        jitter_rng = np.random.default_rng(seed) if self.photometric > 0 else None
        part = augment.photometric(image[window], jitter_rng, self.photometric)
      else:
        values, codes = table
        jittered = augment.photometric(values, np.random.default_rng(seed), self.photometric)
        part = np.take(jittered.ravel(), codes[window], mode='clip')
      out[key][j] = augment.dihedral(resample.linear(part), k)
    out['label'][j] = augment.dihedral(resample.nearest(mask[window]), k)
    out['valid'][j] = augment.dihedral(resample.nearest(valid[window]), k)

  def _degrade(self, out, j, rng):
    """Histogram matching, blur and noise of block j, in place; each commutes with the
    dihedral element already applied."""
    x = self.jitter
    if x.histogram_match and rng.uniform() < x.histogram_match:
      src, ref = ('pre', 'post') if rng.uniform() < 0.5 else ('post', 'pre')
      out[src][j] = augment.match_histograms(out[src][j], out[ref][j], out['valid'][j])
    for key in ('pre', 'post'):
      if x.blur and rng.uniform() < x.blur:
        out[key][j] = augment.blur(out[key][j], rng.uniform(0.3, 1.5))
      if x.noise:
        out[key][j] = augment.add_noise(out[key][j], rng, rng.uniform(0.0, x.noise))

  def _jitter_into(self, dst, image, table, window, seed, k):
    """Writes dihedral(photometric(image[window]), k) into `dst`, bit for bit; where the
    date has few distinct values, as a look-up of rotated codes (the jitter is
    elementwise), which skips a float64 power per pixel and a copy."""
    if table is None:
      rng = np.random.default_rng(seed) if self.photometric > 0 else None
      dst[...] = augment.dihedral(augment.photometric(image[window], rng, self.photometric), k)
      return
    values, codes = table
    jittered = augment.photometric(values, np.random.default_rng(seed), self.photometric)
    np.take(jittered.ravel(), augment.dihedral(codes[window], k), out=dst, mode='clip')


def _value_table(image):
  """(values, codes): every distinct value of `image` once per band, and the index of
  each pixel's value in that flattened (values, bands) table; None if too many."""
  distinct, inverse = _levels_of_8_bit(image)
  if distinct is None:
    distinct, inverse = np.unique(image, return_inverse=True)
  if len(distinct) > MAX_TABLE_VALUES:
    return None
  bands = image.shape[-1]
  values = np.repeat(distinct[:, None], bands, 1)
  codes = inverse.reshape(image.shape) * bands + np.arange(bands)
  return values, codes.astype(np.uint16 if values.size <= 2**16 else np.int32)


def _levels_of_8_bit(image):
  """(k / 255 for k in 0..255, each pixel's k) if every pixel is one of those float32
  values, as 8-bit imagery read by io is; else (None, None). Found without the sort of
  np.unique, which took most of the sampler's set-up (3 s for AirChange's 16 dates)."""
  scale = np.float32(io.DTYPE_SCALE[np.dtype(np.uint8)])
  levels = np.rint(image * scale)
  if not (levels.min() >= 0 and levels.max() <= scale):  # NaN fails too
    return None, None
  levels = levels.astype(np.uint16)  # room for the band offsets added to it
  distinct = np.arange(int(scale) + 1, dtype=np.float32) / scale
  return (distinct, levels) if np.array_equal(distinct[levels], image) else (None, None)
