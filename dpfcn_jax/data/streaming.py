"""Rasters larger than memory: read by bands of rows, written by bands of rows.

Predicting a 20,000 x 20,000 scene must not hold the scene. `RowReader` decodes
only the TIFF strips or tiles under the rows asked for (an uncompressed
contiguous image is read straight from the file), and `RowWriter` takes rows top
to bottom and writes a tiled, compressed GeoTIFF as they come, holding one row
of tiles. PNG/BMP/JPEG offer no random access, so they are decoded whole: they
are small formats in practice.
"""
import os
import pathlib
import queue
import threading

import numpy as np
import tifffile

from dpfcn_jax.data import io
from dpfcn_jax.errors import InputError

OUTPUT_TILE = 256            # GeoTIFF tile side of the outputs
JPEG_COMPRESSIONS = {6, 7, 34892, 33007}  # their segments need the file's JPEG tables
_WRITE_POLL_S = 1.0          # how often a blocked writer checks that its thread lives


class RowReader:
  """Raw pixels of rows [r0, r1) of one raster as (rows, W, B), decoded on demand.

  TIFF segments decoded for one call are kept until a later call asks only for
  rows below them, so the overlapping bands of a window sweep decode each once.
  """

  def __init__(self, path):
    self.path = str(path)
    if not os.path.isfile(self.path):
      raise InputError(f'{self.path}: file not found')
    self._tif, self._file, self._array, self._cache = None, None, None, {}
    if pathlib.Path(self.path).suffix.lower() in io.TIFF_SUFFIXES:
      try:
        self._open_tiff()
      except InputError:
        raise
      except Exception as e:  # decoders raise many types on corrupt or truncated files
        self.close()
        raise InputError(f'{self.path}: not a readable image ({type(e).__name__}: {e})') from e
    if self._tif is None:
      array, self.geo = io.read_array(self.path)
      self._array = array[..., None] if array.ndim == 2 else array
      self.shape, self.dtype = self._array.shape, self._array.dtype

  def _open_tiff(self):
    tif = tifffile.TiffFile(self.path)
    self._tif = tif
    if not tif.pages:
      raise InputError(f'{self.path}: TIFF holds no image')
    page = tif.pages[0]
    if len(tif.series) != 1 or tif.series[0].shape != page.shape or page.imagedepth != 1:
      self.close()  # several pages make one image: io reads those whole
      return
    self._page = page
    tags = tuple((t.code, int(t.dtype), t.count, t.value) for t in page.tags.values()
                 if t.code in io.GEO_TAGS)
    self.geo = io.GeoInfo(tags) if tags else None
    self.shape = (page.imagelength, page.imagewidth, page.samplesperpixel)
    self.dtype = np.dtype(page.dtype).newbyteorder(tif.byteorder)
    if min(self.shape[:2]) == 0:
      raise InputError(f'{self.path}: empty image')
    if page.is_final and (page.planarconfig == 1 or page.samplesperpixel == 1):
      self._file = open(self.path, 'rb')  # pylint: disable=consider-using-with
      self._offset = page.dataoffsets[0]
      return
    self._seg_rows = page.tilelength if page.is_tiled else min(page.rowsperstrip, self.shape[0])
    self._decodeargs = {'_fullsize': page.is_tiled}
    if page.compression in JPEG_COMPRESSIONS:
      self._decodeargs.update(jpegtables=page.jpegtables, jpegheader=page.jpegheader)

  def rows(self, r0: int, r1: int) -> np.ndarray:
    if not 0 <= r0 < r1 <= self.shape[0]:
      raise ValueError(f'rows [{r0}, {r1}) outside 0..{self.shape[0]}')
    if self._array is not None:
      return self._array[r0:r1]
    try:
      return self._read_contiguous(r0, r1) if self._file else self._read_segments(r0, r1)
    except Exception as e:  # a truncated or corrupt file fails only when its rows are decoded
      raise InputError(f'{self.path}: rows {r0}..{r1 - 1} cannot be decoded '
                       f'({type(e).__name__}: {e})') from e

  def _read_contiguous(self, r0, r1):
    row_bytes = self.shape[1] * self.shape[2] * self.dtype.itemsize
    self._file.seek(self._offset + r0 * row_bytes)
    data = self._file.read((r1 - r0) * row_bytes)
    return np.frombuffer(data, self.dtype).reshape(r1 - r0, *self.shape[1:])

  def _read_segments(self, r0, r1):
    first, last = r0 // self._seg_rows, (r1 - 1) // self._seg_rows
    self._cache = {k: v for k, v in self._cache.items() if k >= first}
    for k in range(first, last + 1):
      if k not in self._cache:
        self._cache[k] = self._decode_segment_row(k)
    block = np.concatenate([self._cache[k] for k in range(first, last + 1)])
    return block[r0 - first * self._seg_rows:r1 - first * self._seg_rows]

  def _decode_segment_row(self, k):
    """Rows [k * seg_rows, ...) from the strips or tiles that hold them (every plane)."""
    page, (h, w, b) = self._page, self.shape
    top = k * self._seg_rows
    out = np.zeros((min(self._seg_rows, h - top), w, b), self.dtype)
    planes = b if page.planarconfig == 2 else 1
    if page.is_tiled:
      down, across = -(-h // page.tilelength), -(-w // page.tilewidth)
      index = [(p * down + k) * across + c for p in range(planes) for c in range(across)]
    else:
      index = [p * -(-h // self._seg_rows) + k for p in range(planes)]
    segments = self._tif.filehandle.read_segments(
        [page.dataoffsets[i] for i in index], [page.databytecounts[i] for i in index],
        indices=index, sort=True)
    for data, i in segments:
      seg, (plane, _, y, x, _), _ = page.decode(data, i, **self._decodeargs)
      if seg is None:
        continue  # an empty segment reads as zeros, as tifffile does
      seg = seg[0, :out.shape[0], :w - x]
      bands = slice(plane, plane + 1) if page.planarconfig == 2 else slice(None)
      out[y - top:y - top + seg.shape[0], x:x + seg.shape[1], bands] = seg
    return out

  def close(self):
    for handle in (self._tif, self._file):
      if handle is not None:
        handle.close()
    self._tif = self._file = None
    self._cache = {}

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


class RowWriter:
  """A tiled GeoTIFF, zlib-compressed unless told otherwise, written from rows given top
  to bottom.

  tifffile pulls tiles from an iterator; a thread runs it so that callers can
  push rows from one loop into several files (compression also overlaps the
  model). At most one row of tiles waits in memory per file.
  """

  def __init__(self, path, height, width, dtype, geo=None, nodata=None, rgb=False,
               compression='zlib'):
    self.path, self._height, self._width = str(path), height, width
    self._rgb, self._dtype, self._compression = rgb, np.dtype(dtype), compression
    self._pending, self._done_rows, self._error = [], 0, None
    self._queue = queue.Queue(maxsize=1)
    shape = (height, width, 3) if rgb else (height, width)
    self._thread = threading.Thread(target=self._run, args=(shape, geo, nodata), daemon=True)
    self._thread.start()

  def _run(self, shape, geo, nodata):
    try:
      tifffile.imwrite(self.path, data=self._tiles(), shape=shape, dtype=self._dtype,
                       tile=(OUTPUT_TILE, OUTPUT_TILE), compression=self._compression,
                       photometric='rgb' if self._rgb else 'minisblack',
                       extratags=io.geotiff_extratags(geo, nodata),
                       metadata=None)  # no shape note: a COG's overview pages contradict it
    except BaseException as e:  # pylint: disable=broad-except
      self._error = e

  def _tiles(self):
    while True:
      item = self._queue.get()
      if item is None:
        return
      if isinstance(item, BaseException):
        raise item
      yield from item

  def _put(self, item):
    """Hands `item` to the writer thread; raises its error if it failed. A thread that
    ended cleanly has every tile already, so it needs no end marker."""
    while self._thread.is_alive():
      try:
        self._queue.put(item, timeout=_WRITE_POLL_S)
        return
      except queue.Full:
        pass
    if self._error is not None:
      raise self._error

  def write(self, rows):
    rows = np.asarray(rows, self._dtype)
    if rows.shape[1] != self._width or self._done_rows + len(rows) > self._height:
      raise ValueError(f'{self.path}: rows {rows.shape} do not fit the remaining image')
    self._pending.append(rows)
    self._done_rows += len(rows)
    buffered = sum(len(r) for r in self._pending)
    if buffered >= OUTPUT_TILE or self._done_rows == self._height:
      band = np.concatenate(self._pending)
      cut = len(band) if self._done_rows == self._height else len(band) // OUTPUT_TILE * OUTPUT_TILE
      for r in range(0, cut, OUTPUT_TILE):
        self._put([band[r:r + OUTPUT_TILE, c:c + OUTPUT_TILE]
                   for c in range(0, self._width, OUTPUT_TILE)])
      self._pending = [band[cut:]] if cut < len(band) else []

  def close(self):
    """Finishes the file; raises if rows are missing or writing failed."""
    if self._done_rows != self._height:
      self.abort()
      raise ValueError(f'{self.path}: {self._done_rows} of {self._height} rows written')
    self._put(None)
    self._thread.join()
    if self._error is not None:
      raise self._error

  def abort(self):
    """Stops the writer thread; the partial file is left for the caller to remove."""
    try:
      self._put(InterruptedError('aborted'))
    except BaseException:  # pylint: disable=broad-except
      pass  # the thread failed first; the caller's error is the one to report
    self._thread.join()

  def __enter__(self):
    return self

  def __exit__(self, exc_type, *_):
    if exc_type is None:
      self.close()
    else:
      self.abort()
