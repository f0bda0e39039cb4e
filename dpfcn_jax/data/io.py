"""Reading and validating rasters, masks and sites; the GeoTIFF tags outputs carry.

GeoTIFF/TIFF go through tifffile, PNG/BMP/JPEG through Pillow. The georeferencing
of the pre image is carried as the raw GeoTIFF tags so outputs copy it unchanged.
Every failure a user can cause raises `InputError` naming the file and the problem.
"""
import dataclasses
from io import BytesIO
import os
import pathlib
from typing import Optional

import numpy as np
from PIL import Image
import tifffile

from dpfcn_jax.errors import InputError

TIFF_SUFFIXES = ('.tif', '.tiff')
PIL_SUFFIXES = ('.png', '.bmp', '.jpg', '.jpeg')
IMAGE_SUFFIXES = TIFF_SUFFIXES + PIL_SUFFIXES
# GeoTIFF tags that define where pixels are on the ground, copied verbatim.
TAG_PIXEL_SCALE, TAG_TIEPOINT, TAG_TRANSFORMATION = 33550, 33922, 34264
TAG_GEOKEYS, TAG_GEODOUBLES, TAG_GEOASCII, TAG_NODATA = 34735, 34736, 34737, 42113
GEO_TAGS = {TAG_PIXEL_SCALE: 'ModelPixelScale', TAG_TIEPOINT: 'ModelTiepoint',
            TAG_TRANSFORMATION: 'ModelTransformation', TAG_GEOKEYS: 'GeoKeyDirectory',
            TAG_GEODOUBLES: 'GeoDoubleParams', TAG_GEOASCII: 'GeoAsciiParams',
            TAG_NODATA: 'GDAL_NODATA'}
# Full-scale value per integer dtype: pixels are scaled to [0, 1] by it.
DTYPE_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
Image.MAX_IMAGE_PIXELS = None  # large scenes are the point; decompression bombs are not a threat here
# Deflate cannot pack more than ~1032 bytes into one, LZW and JPEG less: a header that
# declares more pixel bytes per file byte than this is corrupt, and decoding it would
# allocate gigabytes before failing.
MAX_COMPRESSION = 10_000


@dataclasses.dataclass(frozen=True)
class GeoInfo:
  """Raw GeoTIFF tags as (code, tiff dtype, count, value), for tifffile's `extratags`."""
  tags: tuple

  def tag(self, code):
    for c, _, _, value in self.tags:
      if c == code:
        return value
    return None

  @property
  def nodata(self) -> Optional[float]:
    value = self.tag(TAG_NODATA)
    try:
      return float(str(value).strip('\x00 ')) if value is not None else None
    except ValueError:
      return None

  @property
  def transform(self) -> Optional[np.ndarray]:
    """3x3 affine from (col, row, 1) pixel corner coordinates to map (x, y, 1)."""
    matrix = self.tag(TAG_TRANSFORMATION)
    if matrix is not None:
      m = np.asarray(matrix, np.float64).reshape(4, 4)
      return np.array([[m[0, 0], m[0, 1], m[0, 3]], [m[1, 0], m[1, 1], m[1, 3]], [0, 0, 1]])
    scale, tie = self.tag(TAG_PIXEL_SCALE), self.tag(TAG_TIEPOINT)
    if scale is None or tie is None:
      return None
    i, j, _, x, y, _ = tie[:6]
    return np.array([[scale[0], 0, x - i * scale[0]], [0, -scale[1], y + j * scale[1]], [0, 0, 1]])

  @property
  def pixel_area(self) -> Optional[float]:
    t = self.transform
    return None if t is None else abs(np.linalg.det(t[:2, :2]))

  def pixel_to_map(self, rows, cols):
    """Map coordinates of pixel-corner positions (row, col may be fractional)."""
    t = self.transform
    cols, rows = np.asarray(cols, np.float64), np.asarray(rows, np.float64)
    return t[0, 0] * cols + t[0, 1] * rows + t[0, 2], t[1, 0] * cols + t[1, 1] * rows + t[1, 2]

  @property
  def crs_wkt(self) -> Optional[str]:
    """The CRS as WKT, as GDAL derives it from the GeoKeys; None without keys or GDAL.

    GDAL is what QGIS and rasterio read with: its reading of a CRS given by
    parameters, not a hand translation of the keys, is the one outputs must carry.
    """
    if self.tag(TAG_GEOKEYS) is None:
      return None
    try:
      from rasterio.io import MemoryFile  # pylint: disable=g-import-not-at-top
    except ImportError:
      return None
    buffer = BytesIO()
    tifffile.imwrite(buffer, np.zeros((1, 1), np.uint8), extratags=geotiff_extratags(self))
    with MemoryFile(buffer.getvalue()) as memory, memory.open() as dataset:
      return dataset.crs.to_wkt() if dataset.crs else None

  def window(self, row0, col0):
    """The same georeferencing shifted to start at pixel (row0, col0)."""
    tags = []
    for code, dtype, count, value in self.tags:
      if code == TAG_TIEPOINT:
        i, j, k, x, y, z = value[:6]
        x, y = self.pixel_to_map(row0, col0)
        value = (i, j, k, float(x), float(y), z) + tuple(value[6:])
      elif code == TAG_TRANSFORMATION:
        m = np.asarray(value, np.float64).reshape(4, 4).copy()
        m[0, 3], m[1, 3] = self.pixel_to_map(row0, col0)
        value = tuple(m.ravel())
      tags.append((code, dtype, count, value))
    return GeoInfo(tuple(tags))


@dataclasses.dataclass
class Raster:
  data: np.ndarray               # (H, W, B) float32 in [0, 1]
  valid: np.ndarray              # (H, W) bool: False where every band is nodata
  geo: Optional[GeoInfo]
  path: str

  @property
  def shape(self):
    return self.data.shape


@dataclasses.dataclass
class Site:
  """One scene: a co-registered (pre, post) pair and its reference mask, if any."""
  name: str
  pre: np.ndarray                # (H, W, B) float32 in [0, 1]
  post: np.ndarray
  mask: Optional[np.ndarray]     # (H, W) uint8 in {0, 1}
  valid: np.ndarray              # (H, W) bool; invalid pixels never count
  geo: Optional[GeoInfo]         # georeferencing of the pre image


def _read_tiff(path):
  with tifffile.TiffFile(path) as tif:
    if not tif.pages:
      raise InputError(f'{path}: TIFF holds no image')
    page = tif.pages[0]
    segments = int(np.prod(page.chunked))
    if len(page.dataoffsets) != segments:
      # A corrupt size tag: tifffile would visit every missing strip, for hours.
      raise InputError(f'{path}: corrupt TIFF: {len(page.dataoffsets)} strips or tiles '
                       f'where its size needs {segments}')
    array = tif.series[0].asarray()  # the series keeps the written shape, e.g. (H, W, 5)
    geo = tuple((t.code, int(t.dtype), t.count, t.value) for t in page.tags.values()
                if t.code in GEO_TAGS)
  if page.planarconfig == 2 and array.ndim == 3 and array.shape[0] < array.shape[-1]:
    array = np.moveaxis(array, 0, -1)  # separate planes (B, H, W) -> (H, W, B)
  return array, (GeoInfo(geo) if geo else None)


def _read_pil(path):
  with Image.open(path) as im:
    declared, size = im.width * im.height * len(im.getbands()), os.path.getsize(path)
    if declared > MAX_COMPRESSION * size:
      raise InputError(f'{path}: corrupt header: {im.width}x{im.height} pixels (WxH) cannot '
                       f'come from {size} bytes')
    im.load()
    if im.mode == 'P':
      im = im.convert('RGBA' if 'transparency' in im.info else 'RGB')
    elif im.mode in ('I;16', 'I;16B', 'I;16L'):
      return np.asarray(im, dtype=np.uint16), None
    return np.asarray(im), None


def read_array(path):
  """Decodes an image file to a numpy array (H, W) or (H, W, B) and its GeoInfo."""
  path = str(path)
  if not os.path.isfile(path):
    raise InputError(f'{path}: file not found')
  suffix = pathlib.Path(path).suffix.lower()
  if suffix not in IMAGE_SUFFIXES:
    raise InputError(f'{path}: unsupported file type {suffix!r}; expected one of '
                     f'{", ".join(IMAGE_SUFFIXES)}')
  try:
    array, geo = _read_tiff(path) if suffix in TIFF_SUFFIXES else _read_pil(path)
  except InputError:
    raise
  except Exception as e:  # decoders raise many types on corrupt or truncated files
    raise InputError(f'{path}: not a readable image ({type(e).__name__}: {e})') from e
  if array.ndim not in (2, 3) or min(array.shape[:2]) == 0:
    raise InputError(f'{path}: expected a 2-D image with bands last, got shape {array.shape}')
  return array, geo


def to_unit_float(array, path):
  """Scales uint8/uint16 to [0, 1] by the dtype's full range; floats must already be."""
  if array.dtype in DTYPE_SCALE:
    return array.astype(np.float32) / np.float32(DTYPE_SCALE[array.dtype])
  if array.dtype.kind == 'f':
    if not np.all(np.isfinite(array)):
      raise InputError(f'{path}: {int(np.sum(~np.isfinite(array)))} NaN/Inf pixel values')
    if array.min() < 0 or array.max() > 1:
      raise InputError(f'{path}: float raster values must lie in [0, 1], found '
                       f'[{array.min():.4g}, {array.max():.4g}]')
    return array.astype(np.float32)
  raise InputError(f'{path}: unsupported pixel type {array.dtype}; expected uint8, uint16 '
                   'or float in [0, 1]')


def read_raster(path, bands: int) -> Raster:
  """Reads an image with `bands` bands as float32 in [0, 1], keeping its georeferencing."""
  array, geo = read_array(path)
  if array.ndim == 2:
    array = array[..., None]
  array = array[..., :bands_to_keep(array.shape[-1], bands, geo, path)]
  valid = _not_nodata(array, geo.nodata if geo else None)
  if not valid.any():
    raise InputError(f'{path}: every pixel is nodata ({geo.nodata:g})')
  return Raster(to_unit_float(array, path), valid, geo, str(path))


def bands_to_keep(file_bands: int, bands: int, geo, path) -> int:
  """How many leading bands of a file with `file_bands` to use; InputError if unusable."""
  if file_bands == 4 and bands == 3 and not (geo and geo.nodata is not None):
    return 3  # RGBA from PNG export: alpha carries no spectral information
  if file_bands != bands:
    raise InputError(f'{path}: has {file_bands} bands, the config expects {bands}')
  return bands


def _not_nodata(array, nodata):
  """Pixels where not every band equals the nodata value (one it can hold)."""
  if nodata is None or (array.dtype.kind in 'ui' and not (
      float(nodata).is_integer() and np.iinfo(array.dtype).min <= nodata
      <= np.iinfo(array.dtype).max)):
    return np.ones(array.shape[:2], bool)  # e.g. 256 on uint8: no pixel can be nodata
  return ~np.all(array == np.asarray(nodata).astype(array.dtype), axis=-1)


def read_mask(path, threshold: float) -> np.ndarray:
  """Reads a reference mask; pixels above `threshold` (in the file's units) are landslide."""
  array, _ = read_array(path)
  return mask_from_array(array, threshold, path)


def mask_from_array(array, threshold: float, path) -> np.ndarray:
  """Binarises decoded mask pixels (H, W) or (H, W, B) to uint8 {0, 1}."""
  if array.ndim == 3:
    array = array.max(axis=-1)  # colour-coded masks: any lit band marks the class
  if array.dtype.kind == 'f' and not np.all(np.isfinite(array)):
    raise InputError(f'{path}: mask has NaN/Inf values')
  if array.dtype.kind not in 'uifb':
    raise InputError(f'{path}: unsupported mask pixel type {array.dtype}')
  return (array > threshold).astype(np.uint8)


def find_image(folder, stem):
  """The single file `folder/stem.<image suffix>`, or InputError."""
  folder = pathlib.Path(folder)
  hits = sorted(p for p in folder.glob(f'{stem}.*') if p.suffix.lower() in IMAGE_SUFFIXES)
  if not hits:
    raise InputError(f'{folder}: no {stem} image ({stem}.tif/.png/.bmp/.jpg) in site folder')
  if len(hits) > 1:
    raise InputError(f'{folder}: several {stem} images: {", ".join(p.name for p in hits)}')
  return hits[0]


def check_same_grid(a: Raster, b: Raster):
  """Pre and post must share the pixel grid and, where both have one, the georeferencing."""
  if a.shape[:2] != b.shape[:2]:
    raise InputError(f'{b.path}: size {b.shape[1]}x{b.shape[0]} (WxH) differs '
                     f'from {a.path}: {a.shape[1]}x{a.shape[0]}')
  if a.geo is not None and b.geo is not None:
    ta, tb = a.geo.transform, b.geo.transform
    if (ta is None) != (tb is None) or (ta is not None and not np.allclose(ta, tb, rtol=0,
                                                                         atol=1e-6 * abs(ta).max())):
      raise InputError(f'{b.path}: georeferencing disagrees with {a.path}')


def make_site(name, pre: Raster, post: Raster, mask_path=None, threshold=127) -> Site:
  check_same_grid(pre, post)
  mask = None
  if mask_path is not None:
    mask = read_mask(mask_path, threshold)
    if mask.shape != pre.data.shape[:2]:
      raise InputError(f'{mask_path}: mask size {mask.shape[1]}x{mask.shape[0]} (WxH) differs '
                       f'from {pre.path}: {pre.data.shape[1]}x{pre.data.shape[0]}')
  return Site(name, pre.data, post.data, mask, pre.valid & post.valid, pre.geo)


def load_site(folder, bands: int, threshold: float, require_mask: bool = True) -> Site:
  """Loads FOLDER/{pre,post,mask}.<ext> as one validated Site named after the folder."""
  folder = pathlib.Path(folder)
  if not folder.is_dir():
    raise InputError(f'{folder}: site folder not found')
  pre = read_raster(find_image(folder, 'pre'), bands)
  post = read_raster(find_image(folder, 'post'), bands)
  mask_path = find_image(folder, 'mask') if require_mask else None
  return make_site(folder.name, pre, post, mask_path, threshold)


def geotiff_extratags(geo: Optional[GeoInfo], nodata=None) -> list:
  """tifffile `extratags` carrying `geo` unchanged; `nodata`, if given, replaces its nodata."""
  tags = [t for t in (geo.tags if geo else ()) if t[0] != TAG_NODATA]
  if nodata is not None:
    tags.append((TAG_NODATA, 2, 0, str(nodata), True))
  elif geo and geo.tag(TAG_NODATA) is not None:
    tags.extend(t for t in geo.tags if t[0] == TAG_NODATA)
  return [(code, dtype, count, value, True) for code, dtype, count, value, *_ in tags]
