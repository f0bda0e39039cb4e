"""python -m dpfcn_jax.predict --workdir=W --pre=PRE --post=POST --out=DIR [--mask=M]

Maps a new scene of any size with a trained model (checkpoint and architecture
from W), no reference mask needed. Windows overlap and are blended (Section II-C
blocks, stitched without seams); the scene is read and written band by band, so
memory does not grow with it. DIR (new, empty, or an earlier output of ours; see
output_dir) receives, atomically:
  probability.tif   float32 landslide probability   } georeferencing of PRE,
  lim.tif           uint8 landslide inventory map    } tags copied unchanged
  uncertainty.tif   MC-dropout standard deviation (with --mc_samples)
  inventory.geojson one exact pixel-edge polygon per landslide; inventory.csv
  quicklook.png     the post image with the landslide outlines
  metrics.json, error_map.tif   with --mask: Table II scores, Figs. 3-4 colours
Inference options default to the checkpoint's config.infer; flags override them.
"""
import contextlib
import json
import logging
import math
import os
import time

from absl import app, flags
import jax
import ml_collections
import numpy as np
from PIL import Image, ImageDraw

from configs import default
from dpfcn_jax import cli, eval_lib, inference, inventory, maps, metrics, output_dir
from dpfcn_jax.data import io, streaming
from dpfcn_jax.errors import ConfigError, InputError

OUTLINE_RGB = (255, 0, 255)  # magenta stands out on both vegetation and bare soil
PALETTE_SIZE = 256           # quicklook.png is palette PNG: a third of RGB's bytes
LIM_NODATA = 255             # lim.tif value of nodata pixels when the input's cannot serve

log = logging.getLogger('dpfcn_jax.predict')  # the same logger when run as __main__
# config.infer fields that a flag of the same name overrides.
OVERRIDES = {'tile': int, 'stride': int, 'batch_size': int, 'tta': bool, 'mc_samples': int,
             'min_area_m2': float, 'fill_holes': bool, 'connectivity': int,
             'quicklook_side': int}


def define_flags():
  """Command-line flags; defined only when run as a program, so importing is free."""
  flags.DEFINE_string('workdir', None, 'Directory holding the trained checkpoints.')
  flags.DEFINE_string('pre', None, 'Pre-event image (GeoTIFF/TIFF/PNG/BMP/JPEG).')
  flags.DEFINE_string('post', None, 'Post-event image, on the same grid as --pre.')
  flags.DEFINE_string('out', None, 'Output directory: new, empty, or an earlier output of '
                      'predict, which is replaced atomically.')
  flags.DEFINE_boolean('overwrite', False, 'Write into an --out folder holding other files: '
                       'files of our output names are replaced, no other file is removed.')
  flags.DEFINE_string('mask', None, 'Optional reference mask: also score the map.')
  flags.DEFINE_integer('checkpoint_step', None, 'Checkpoint step (default: newest).')
  flags.DEFINE_string('compilation_cache', default.get_config().compilation_cache,
                      "Compiled programs are kept in WORKDIR/<this>, for the next run ('' = off).")
  define = {int: flags.DEFINE_integer, float: flags.DEFINE_float, bool: flags.DEFINE_boolean}
  for name, kind in OVERRIDES.items():
    define[kind](name, None, f'Overrides config.infer.{name} of the checkpoint.')
  flags.mark_flags_as_required(['workdir', 'pre', 'post', 'out'])


def infer_config(saved, overrides=None):
  """The checkpoint's config.infer over today's defaults, then `overrides`; checked."""
  cfg = default.get_config().infer.to_dict()
  cfg.update({k: v for k, v in saved.infer.to_dict().items() if k in cfg})
  cfg.update(overrides or {})
  multiple = 2 ** saved.model.depth
  if cfg['tile'] <= 0 or cfg['tile'] % multiple:
    raise ConfigError(f'tile {cfg["tile"]} must be a positive multiple of {multiple}')
  if not 0 < cfg['stride'] <= cfg['tile']:
    raise ConfigError(f'stride {cfg["stride"]} must be in 1..tile ({cfg["tile"]})')
  if min(cfg['batch_size'], cfg['quicklook_side']) < 1 or cfg['mc_samples'] < 0:
    raise ConfigError('batch_size and quicklook_side must be >= 1, mc_samples >= 0')
  if cfg['connectivity'] not in inventory.CONNECTIVITIES:
    raise ConfigError(f'connectivity must be 4 or 8, got {cfg["connectivity"]}')
  return ml_collections.ConfigDict(cfg)


class SceneRows:
  """`read_rows` for inference: (pre, post) rows as float32 in [0, 1].

  On the way it keeps the validity (not nodata) of rows read but not yet written,
  and a block-averaged copy of the post image for the quicklook.
  """

  def __init__(self, pre, post, bands, quicklook_side):
    self.pre, self.post = pre, post
    self.height, self.width = pre.shape[:2]
    self.keep = [io.bands_to_keep(r.shape[2], bands, r.geo, r.path) for r in (pre, post)]
    self.factor = max(1, math.ceil(max(self.height, self.width) / quicklook_side))
    cols = np.arange(0, self.width, self.factor)
    self._cols, self._col_count = cols, np.diff(np.append(cols, self.width))
    self._thumb = np.zeros((-(-self.height // self.factor), len(cols), 3), np.float32)
    self._seen, self._valid, self.valid_pixels = np.zeros(self.height, bool), {}, 0

  def __call__(self, index):
    lo, hi = int(index.min()), int(index.max()) + 1
    raw = [r.rows(lo, hi)[..., :k] for r, k in zip((self.pre, self.post), self.keep)]
    new = np.nonzero(~self._seen[lo:hi])[0]
    if len(new):
      valid = np.ones((len(new), self.width), bool)
      for a, r in zip(raw, (self.pre, self.post)):
        valid &= io._not_nodata(a[new], r.geo.nodata if r.geo else None)  # pylint: disable=protected-access
      self._valid.update(zip((new + lo).tolist(), valid))
      self._seen[new + lo] = True
      self.valid_pixels += int(valid.sum())
      post = io.to_unit_float(raw[1][new], self.post.path)
      rgb = post[..., [0, 1, 2] if post.shape[-1] >= 3 else [0, 0, 0]]
      np.add.at(self._thumb, (new + lo) // self.factor, np.add.reduceat(rgb, self._cols, axis=1))
    # `index` covers [lo, hi) (mirroring repeats rows), so every row read is checked.
    return tuple(io.to_unit_float(a[index - lo], r.path) for a, r in zip(raw, (self.pre, self.post)))

  def valid(self, r0, r1):
    """Validity of rows [r0, r1), each released once written."""
    return np.stack([self._valid.pop(r) for r in range(r0, r1)])

  def quicklook(self):
    """The post image averaged over factor x factor blocks, uint8 RGB."""
    rows = np.minimum(self.factor, self.height - np.arange(self._thumb.shape[0]) * self.factor)
    out = np.empty(self._thumb.shape, np.uint8)
    for i, n in enumerate(rows):  # row by row: no more quicklook-sized temporaries
      mean = self._thumb[i] * (255 / (n * self._col_count))[:, None]
      out[i] = np.clip(np.rint(mean), 0, 255)
    return out


def output_nodata(geo, dtype, lo, hi, fallback, any_invalid=True):
  """(nodata tag, pixel value) for an output of `dtype` whose values lie in [lo, hi].

  The input's nodata tag is copied unchanged (tag None) unless an output value
  could equal it, or nodata pixels exist and `dtype` cannot hold it: then
  `fallback` replaces it.
  """
  value = geo.nodata if geo else None
  if value is None:
    return None, fallback  # no nodata value, so no nodata pixels
  dtype = np.dtype(dtype)
  fits = (abs(value) <= np.finfo(dtype).max if dtype.kind == 'f' else
          float(value).is_integer() and np.iinfo(dtype).min <= value <= np.iinfo(dtype).max)
  if lo <= value <= hi or (any_invalid and not fits):
    return fallback, fallback
  return None, (value if fits else fallback)


class Progress:
  """Logs windows done, windows/s and the time left, every `every_s` seconds.

  The rate is timed from the end of the first batch, which includes compilation.
  """

  def __init__(self, every_s):
    self.every_s, self.done, self.rate = every_s, 0, 0.0
    self._first = None  # (time, windows) when the first batch came back

  def __call__(self, done, total):
    self.done, now = done, time.time()
    if self._first is None:
      self._first = self._last = now, done
      return
    if now - self._first[0] > 0:
      self.rate = (done - self._first[1]) / (now - self._first[0])
    if (now - self._last[0] >= self.every_s or done == total) and self.rate > 0:
      self._last = now, done
      log.info('windows %d/%d (%.1f%%), %.1f windows/s, ETA %s', done, total,
               100 * done / total, self.rate, _duration((total - done) / self.rate))


def _duration(seconds):
  m, s = divmod(int(round(seconds)), 60)
  return f'{m // 60}h{m % 60:02d}m{s:02d}s' if m >= 60 else f'{m}m{s:02d}s'


def _open_inputs(stack, pre_path, post_path, mask_path):
  pre = stack.enter_context(streaming.RowReader(pre_path))
  post = stack.enter_context(streaming.RowReader(post_path))
  io.check_same_grid(pre, post)
  mask = stack.enter_context(streaming.RowReader(mask_path)) if mask_path else None
  if mask is not None and mask.shape[:2] != pre.shape[:2]:
    raise InputError(f'{mask_path}: mask size {mask.shape[1]}x{mask.shape[0]} (WxH) differs '
                     f'from {pre.path}: {pre.shape[1]}x{pre.shape[0]}')
  return pre, post, mask


def _probability_pass(out, model, params, saved, cfg, scene, geo):
  """Runs the windows; writes probability (and uncertainty); returns the runs of
  landslide pixels (with statistics) and of nodata pixels, and the Progress."""
  h, w = scene.height, scene.width
  tag, fill = output_nodata(geo, np.float32, 0.0, 1.0, np.nan)
  names = ['probability'] + (['uncertainty'] if cfg.mc_samples else [])
  landslide, invalid = inventory.RunCollector(), inventory.RunCollector()
  infer = inference.make_infer_fn(model, cfg.tta, cfg.mc_samples)
  rng = jax.random.key(saved.seed, impl=saved.prng_impl)
  progress = Progress(cfg.progress_every_s)
  with contextlib.ExitStack() as stack:
    writers = [stack.enter_context(streaming.RowWriter(os.path.join(out, f'{n}.tif'), h, w,
                                                       np.float32, geo, tag)) for n in names]
    for row0, prob, std in inference.stream_probability(
        infer, params, scene, h, w, cfg.tile, cfg.stride, cfg.batch_size, rng, progress):
      valid = scene.valid(row0, row0 + len(prob))
      prob, std = (np.where(valid, a, fill).astype(np.float32) for a in (prob, std))
      for writer, band in zip(writers, (prob, std)):
        writer.write(band)
      landslide.add(row0, (prob > eval_lib.THRESHOLD) & valid, prob, std)
      invalid.add(row0, ~valid)
  return landslide.runs(), invalid.runs(), progress


def _map_pass(out, inv, invalid, scene, geo, mask, threshold):
  """Writes lim.tif from the inventory (and, with a mask, error_map.tif); returns the
  confusion counts over valid pixels, or None."""
  h, w = scene.height, scene.width
  tag, fill = output_nodata(geo, np.uint8, 0, 1, LIM_NODATA, any_invalid=len(invalid) > 0)
  counts = np.zeros(4, np.int64)
  plain = io.GeoInfo(tuple(t for t in geo.tags if t[0] != 42113)) if geo else None
  with contextlib.ExitStack() as stack:
    lim = stack.enter_context(streaming.RowWriter(os.path.join(out, 'lim.tif'), h, w,
                                                  np.uint8, geo, tag))
    errors = stack.enter_context(streaming.RowWriter(
        os.path.join(out, 'error_map.tif'), h, w, np.uint8, plain, rgb=True)) \
        if mask is not None else None
    for r0 in range(0, h, streaming.OUTPUT_TILE):
      r1 = min(h, r0 + streaming.OUTPUT_TILE)
      pred = inventory.rows_mask(inv.mapped, r0, r1, w)
      valid = ~inventory.rows_mask(invalid, r0, r1, w)
      lim.write(np.where(valid, pred, fill).astype(np.uint8))
      if errors is not None:
        ref = io.mask_from_array(mask.rows(r0, r1), threshold, mask.path)
        counts += metrics.confusion(pred, ref, valid)
        errors.write(maps.error_map(pred, ref, valid))
  return tuple(int(c) for c in counts) if errors is not None else None


def save_quicklook(path, image, regions, factor):
  """The (downsampled) post image with every polygon ring drawn, as a palette PNG."""
  outline = PALETTE_SIZE - 1  # the photo gets the other palette entries
  im = Image.fromarray(image).quantize(outline)
  palette = (im.getpalette() + [0] * 3 * outline)[:3 * outline]  # lists used entries only
  im.putpalette(palette + list(OUTLINE_RGB))
  draw = ImageDraw.Draw(im)
  for region in regions:
    for ring in (r for poly in region.polygons for r in poly):
      draw.line([tuple(p) for p in ring / factor], fill=outline, width=1)
  im.save(path, optimize=True)


def predict(workdir, pre_path, post_path, out_dir, mask_path=None, step=None, overrides=None,
            overwrite=False):
  """Maps one scene into `out_dir` (see the module doc); returns a summary dict."""
  t0 = time.time()
  output_dir.check(out_dir, overwrite)  # before minutes of work, not after
  with contextlib.ExitStack() as stack:
    pre, post, mask = _open_inputs(stack, pre_path, post_path, mask_path)
    model, params, saved = eval_lib.restore_params(workdir, step)
    cfg = infer_config(saved, overrides)
    scene = SceneRows(pre, post, saved.data.bands, cfg.quicklook_side)
    geo = pre.geo
    pixel_area = geo.pixel_area if geo else 1.0
    log.info('%s: %dx%d px (WxH), %d bands, %s', pre.path, scene.width, scene.height,
             saved.data.bands, 'georeferenced' if geo else 'no georeferencing')
    with output_dir.atomic_directory(out_dir, 'predict', overwrite) as out:
      runs, invalid, progress = _probability_pass(out, model, params, saved, cfg, scene, geo)
      if scene.valid_pixels == 0:
        raise InputError(f'{pre.path}, {post.path}: every pixel is nodata')
      inv = inventory.build(runs, scene.width, scene.height, cfg.connectivity, cfg.fill_holes,
                            cfg.min_area_m2 / pixel_area)
      counts = _map_pass(out, inv, invalid, scene, geo, mask, saved.data.mask_threshold)
      found, area = inventory.write(inv, geo, os.path.join(out, 'inventory.geojson'),
                                    os.path.join(out, 'inventory.csv'), cfg.mc_samples > 0)
      save_quicklook(os.path.join(out, 'quicklook.png'), scene.quicklook(), inv.regions,
                     scene.factor)
      summary = {'landslides': found, 'area': area,
                 'area_unit': 'm2' if geo else 'px2', 'seconds': time.time() - t0,
                 'windows': progress.done, 'windows_per_s': progress.rate, 'out': str(out_dir)}
      if counts is not None:
        summary['metrics'] = metrics.site_report(*counts)
        with open(os.path.join(out, 'metrics.json'), 'w') as f:
          json.dump(summary['metrics'], f, indent=2)
  return summary


def _saved_xla_flags(workdir):
  """config.xla_flags of the training run, read before jax starts (orbax would start it)."""
  try:
    with open(os.path.join(workdir, 'config.json')) as f:
      return json.load(f).get('xla_flags', '')
  except (OSError, ValueError, AttributeError):
    return ''  # the checkpoint restore reports what is wrong with the workdir


def main(argv):
  del argv
  f = flags.FLAGS
  cli.setup(_saved_xla_flags(f.workdir))
  cli.use_compilation_cache(f.workdir, f.compilation_cache)
  with cli.user_errors():
    overrides = {k: f[k].value for k in OVERRIDES if f[k].value is not None}
    s = predict(f.workdir, f.pre, f.post, f.out, f.mask, f.checkpoint_step, overrides,
                f.overwrite)
    print(f'{s["landslides"]} landslides, {s["area"]:.1f} {s["area_unit"]} in all, '
          f'{s["windows"]} windows at {s["windows_per_s"]:.1f}/s, {_duration(s["seconds"])}; '
          f'outputs in {s["out"]}', flush=True)
    if 'metrics' in s:
      print(metrics.format_table({'scene': s['metrics']}), flush=True)


if __name__ == '__main__':
  define_flags()
  app.run(main)
