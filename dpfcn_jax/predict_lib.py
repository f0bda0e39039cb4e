"""One scene, any size, mapped with a trained network into a folder of products.

Windows overlap and are blended (Section II-C blocks, stitched without seams); the
scene is read and written band by band, so memory does not grow with it. The
folder (new, empty, or an earlier output of ours; see output_dir) receives,
atomically:
  probability.tif   float32 landslide probability   } Cloud-Optimized GeoTIFFs on
  lim.tif           uint8 landslide inventory map    } PRE's grid, in its CRS
  uncertainty.tif   MC-dropout standard deviation (with mc_samples)
  inventory.geojson one exact pixel-edge polygon per landslide; inventory.csv
  quicklook.png     the post image with the landslide outlines
  metrics.json, error_map.tif   with a mask: Table II scores, Figs. 3-4 colours
  summary.json      landslides, area, time, windows
"""
import contextlib
import json
import logging
import math
import os
import time

import numpy as np
from PIL import Image, ImageDraw

from dpfcn_jax import inventory, metrics, output_dir, scene_map, scene_outputs
from dpfcn_jax.data import io, streaming
from dpfcn_jax.errors import InputError

OUTLINE_RGB = (255, 0, 255)  # magenta stands out on both vegetation and bare soil
PALETTE_SIZE = 256           # quicklook.png is palette PNG: a third of RGB's bytes

log = logging.getLogger(__name__)


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
               100 * done / total, self.rate, duration((total - done) / self.rate))


def _open_inputs(stack, pre_path, post_path, mask_path):
  pre = stack.enter_context(streaming.RowReader(pre_path))
  post = stack.enter_context(streaming.RowReader(post_path))
  io.check_same_grid(pre, post)
  mask = stack.enter_context(streaming.RowReader(mask_path)) if mask_path else None
  if mask is not None and mask.shape[:2] != pre.shape[:2]:
    raise InputError(f'{mask_path}: mask size {mask.shape[1]}x{mask.shape[0]} (WxH) differs '
                     f'from {pre.path}: {pre.shape[1]}x{pre.shape[0]}')
  return pre, post, mask


def _probability_pass(out, mapper, scene, geo):
  """Runs the windows; writes probability (and uncertainty); returns the runs of
  landslide pixels (with statistics) and of nodata pixels, and the Progress."""
  landslide, invalid = inventory.RunCollector(), inventory.RunCollector()
  progress = Progress(mapper.infer.progress_every_s)
  with scene_outputs.ProbabilityWriter(out, scene.height, scene.width, geo,
                                       uncertainty=mapper.infer.mc_samples > 0) as writer:
    for row0, prob, std in mapper.stream(scene, scene.height, scene.width, progress=progress):
      valid = scene.valid(row0, row0 + len(prob))
      prob, std = writer.write(prob, std, valid)
      landslide.add(row0, mapper.lim(prob) & valid, prob, std)
      invalid.add(row0, ~valid)
  return landslide.runs(), invalid.runs(), progress


def _map_pass(out, inv, invalid, scene, geo, mask, threshold):
  """Writes lim.tif from the inventory (and, with a mask, error_map.tif); returns the
  confusion counts over valid pixels, or None."""
  h, w = scene.height, scene.width
  counts = np.zeros(4, np.int64)
  with scene_outputs.LimWriter(out, h, w, geo, any_invalid=len(invalid) > 0,
                               errors=mask is not None) as writer:
    for r0 in range(0, h, streaming.OUTPUT_TILE):
      r1 = min(h, r0 + streaming.OUTPUT_TILE)
      pred = inventory.rows_mask(inv.mapped, r0, r1, w)
      valid = ~inventory.rows_mask(invalid, r0, r1, w)
      ref = None if mask is None else io.mask_from_array(mask.rows(r0, r1), threshold, mask.path)
      writer.write(pred, valid, ref)
      if ref is not None:
        counts += metrics.confusion(pred, ref, valid)
  return tuple(int(c) for c in counts) if mask is not None else None


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


def map_scene(mapper, pre_path, post_path, out_dir, mask_path=None, overwrite=False):
  """Maps one scene with `mapper` into `out_dir` (see the module doc); returns a summary."""
  t0 = time.time()
  output_dir.check(out_dir, overwrite)
  cfg, saved = mapper.infer, mapper.config
  with contextlib.ExitStack() as stack:
    pre, post, mask = _open_inputs(stack, pre_path, post_path, mask_path)
    scene = SceneRows(pre, post, saved.data.bands, cfg.quicklook_side)
    geo = pre.geo
    pixel_area = geo.pixel_area if geo else 1.0
    log.info('%s: %dx%d px (WxH), %d bands, %s', pre.path, scene.width, scene.height,
             saved.data.bands, 'georeferenced' if geo else 'no georeferencing')
    with output_dir.atomic_directory(out_dir, 'predict', overwrite) as out:
      runs, invalid, progress = _probability_pass(out, mapper, scene, geo)
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
      with open(os.path.join(out, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
  return summary


def predict(workdir, pre_path, post_path, out_dir, mask_path=None, step=None, overrides=None,
            overwrite=False):
  """Restores WORKDIR's network and maps one scene into `out_dir`; returns a summary."""
  t0 = time.time()
  output_dir.check(out_dir, overwrite)  # before the model loads, not after
  mapper = scene_map.SceneMapper.restore(workdir, step, overrides=overrides)
  summary = map_scene(mapper, pre_path, post_path, out_dir, mask_path, overwrite)
  return {**summary, 'seconds': time.time() - t0}


def duration(seconds):
  """'1h02m03s' or '2m03s'."""
  m, s = divmod(int(round(seconds)), 60)
  return f'{m // 60}h{m % 60:02d}m{s:02d}s' if m >= 60 else f'{m}m{s:02d}s'
