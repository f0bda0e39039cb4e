"""Cloud-Optimized GeoTIFFs written from rows: streamed to a scratch file, laid out by GDAL.

A COG (internal tiles, compression, overviews, every header before the pixels)
opens at once in QGIS, or from a web server, however large the scene: a viewer
reads the overview level it shows and only the tiles in view. Rows go through
`streaming.RowWriter` into a tiled scratch GeoTIFF beside the target (one row of
tiles in memory); closing hands it to GDAL's COG driver (through rasterio),
whose block cache is capped so that memory stays flat in the scene's area, and
removes the scratch file whether the conversion succeeds or not. The scratch is
uncompressed: GDAL reads it once, and probabilities hardly compress (a 4096^2
map: 64 MiB raw, 60 MiB zlib-compressed for 2.5 times the time to write and
convert). The byte layout is GDAL's own, the one its validator checks;
hand-written, it would drift.

GDAL writes the CRS's GeoKeys anew from its reading of the input's, and reads
the very same CRS back (its WKT is identical); the raw parameters of a CRS given
by parameters come out at the 15 significant digits GDAL reads them to. The
pixel-scale, tiepoint and nodata tags are unchanged.
"""
import contextlib
import os

from dpfcn_jax.data import streaming
from dpfcn_jax.errors import OutputError

COMPRESSION = 'DEFLATE'  # read by every GDAL build, so by every GIS
GDAL_CACHE_MB = 64       # the conversion streams: 16 or 64 MiB made no odds to its time or peak
# The conversion runs between predict's passes, while the model waits: every core
# may compress.
THREADS = 'ALL_CPUS'
# Overview resampling by kind of product: an average of classes is no class, so a
# class map takes each block's majority and a colour map (whose bands would vote
# apart) a sample; measurements are averaged.
MODE, NEAREST, AVERAGE = 'mode', 'nearest', 'average'


def _remove(path):
  with contextlib.suppress(FileNotFoundError):
    os.unlink(path)


class CogWriter:
  """A Cloud-Optimized GeoTIFF at `path`, written from rows top to bottom (RowWriter's
  arguments, plus the overview resampling). `path` is the writer's to replace: outputs
  go into output_dir's scratch folders."""

  def __init__(self, path, height, width, dtype, geo=None, nodata=None, rgb=False,
               resampling=AVERAGE):
    self.path, self._resampling = str(path), resampling
    folder, name = os.path.split(self.path)
    self._scratch = os.path.join(folder, f'.{name}.rows.tif')
    self._rows = streaming.RowWriter(self._scratch, height, width, dtype, geo, nodata, rgb,
                                     compression=None)

  def write(self, rows):
    self._rows.write(rows)

  def close(self):
    """Finishes the rows and converts them; raises if either fails (no file is left)."""
    try:
      self._rows.close()
      self._convert()
    finally:
      _remove(self._scratch)

  def abort(self):
    try:
      self._rows.abort()
    finally:
      _remove(self._scratch)

  def _convert(self):
    import rasterio  # pylint: disable=g-import-not-at-top
    import rasterio.shutil  # pylint: disable=g-import-not-at-top
    try:
      with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        rasterio.shutil.copy(self._scratch, self.path, driver='COG', compress=COMPRESSION,
                             num_threads=THREADS, blocksize=streaming.OUTPUT_TILE,
                             overview_resampling=self._resampling)
    except BaseException as e:
      for path in (self.path, f'{self.path}.ovr.tmp'):  # GDAL's overviews while it works
        _remove(path)
      if isinstance(e, rasterio.errors.RasterioError):
        raise OutputError(f'{self.path}: GDAL could not write the Cloud-Optimized GeoTIFF '
                          f'({e})') from e
      raise

  def __enter__(self):
    return self

  def __exit__(self, exc_type, *_):
    if exc_type is None:
      self.close()
    else:
      self.abort()
