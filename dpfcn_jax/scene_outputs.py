"""Scene products on disk: probability, uncertainty and LIM GeoTIFFs, error maps.

eval and predict write them through here, band by band, so the same product
carries the same georeferencing, nodata rule and tags whichever command made it;
every one is a Cloud-Optimized GeoTIFF (data/cog.py), so GIS tools open it fast.
"""
import contextlib
import os

import numpy as np

from dpfcn_jax import maps
from dpfcn_jax.data import cog, io

LIM_NODATA = 255  # lim.tif value of nodata pixels when the input's nodata value cannot serve


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


class ProbabilityWriter:
  """`probability` (float32 landslide probability) and, with `uncertainty`, the
  MC-dropout std, as GeoTIFFs named `names[product]` in `folder`, written by rows."""

  def __init__(self, folder, height, width, geo, uncertainty=False, names=None):
    names = names or {}
    tag, self.fill = output_nodata(geo, np.float32, 0.0, 1.0, np.nan)
    products = ['probability'] + (['uncertainty'] if uncertainty else [])
    self._stack = contextlib.ExitStack()
    self._writers = [self._stack.enter_context(cog.CogWriter(
        os.path.join(folder, names.get(p, f'{p}.tif')), height, width, np.float32, geo, tag,
        resampling=cog.AVERAGE)) for p in products]

  def write(self, prob, std, valid):
    """Writes the next rows; returns (prob, std) with nodata pixels set to the fill."""
    prob, std = (np.where(valid, a, self.fill).astype(np.float32) for a in (prob, std))
    for writer, band in zip(self._writers, (prob, std)):
      writer.write(band)
    return prob, std

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    return self._stack.__exit__(*exc)


class LimWriter:
  """`lim` (uint8, 1 = landslide) and, with `errors`, the Figs. 3-4 error map of the
  prediction against a reference, as GeoTIFFs in `folder`, written by rows."""

  def __init__(self, folder, height, width, geo, any_invalid=True, errors=False, names=None):
    names = names or {}
    tag, self.fill = output_nodata(geo, np.uint8, 0, 1, LIM_NODATA, any_invalid)
    # The error map is RGB: the input's nodata value means nothing in its colours.
    plain = io.GeoInfo(tuple(t for t in geo.tags if t[0] != io.TAG_NODATA)) if geo else None
    self._stack = contextlib.ExitStack()
    self._lim = self._stack.enter_context(cog.CogWriter(
        os.path.join(folder, names.get('lim', 'lim.tif')), height, width, np.uint8, geo, tag,
        resampling=cog.MODE))
    self._errors = self._stack.enter_context(cog.CogWriter(
        os.path.join(folder, names.get('error_map', 'error_map.tif')), height, width,
        np.uint8, plain, rgb=True, resampling=cog.NEAREST)) if errors else None

  def write(self, pred, valid, ref=None):
    self._lim.write(np.where(valid, pred, self.fill).astype(np.uint8))
    if self._errors is not None:
      self._errors.write(maps.error_map(pred, ref, valid))

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    return self._stack.__exit__(*exc)


def write_site(folder, name, prob, pred, valid, geo, mask=None):
  """eval's products of one in-memory site: probability_NAME.tif, lim_NAME.tif and,
  with a reference mask, map_NAME.png coloured as Figs. 3-4."""
  h, w = prob.shape
  with ProbabilityWriter(folder, h, w, geo, names={'probability': f'probability_{name}.tif'}) \
      as writer:
    writer.write(prob, np.zeros_like(prob), valid)
  with LimWriter(folder, h, w, geo, any_invalid=not valid.all(),
                 names={'lim': f'lim_{name}.tif'}) as writer:
    writer.write(pred, valid)
  if mask is not None:
    maps.save_png(os.path.join(folder, f'map_{name}.png'), maps.error_map(pred, mask, valid))
