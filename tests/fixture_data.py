"""Small stand-ins for the real data sets (README), built by the tests that need them.

They copy what the readers meet in the real files: the AirChange layout and file
formats (RGB BMP pairs, an 8-bit palettised grey mask BMP), and the Lantau GeoTIFF's
georeferencing (tags below, read once from lantau-siteA-post-only/A/post.tif;
tests/test_io.py checks them against the file where it is present).
"""
import numpy as np
from PIL import Image
import tifffile

from dpfcn_jax.data import io, synthetic

# Hong Kong 1980 Grid given by its parameters (Transverse Mercator, origin 22.3121333 N
# 114.1785556 E, false E/N 836694.05/819069.8; no EPSG code), 0.5 m pixels, upper-left
# corner E 803288.5 N 811038.5. GDAL_NODATA '256' cannot occur in uint8 pixels.
HK1980_TAGS = (
    (33550, 12, 3, (0.5, 0.5, 0.0)),
    (33922, 12, 6, (0.0, 0.0, 0.0, 803288.5, 811038.5, 0.0)),
    (34735, 3, 88, (1, 1, 0, 20, 1024, 0, 1, 1, 1025, 0, 1, 1, 1026, 34737, 31, 0, 2048, 0,
                    1, 32767, 2049, 34737, 81, 31, 2050, 0, 1, 32767, 2054, 0, 1, 9102, 2056,
                    0, 1, 32767, 2057, 34736, 1, 5, 2059, 34736, 1, 6, 2061, 34736, 1, 7, 3072,
                    0, 1, 32767, 3074, 0, 1, 32767, 3075, 0, 1, 1, 3076, 0, 1, 9001, 3080,
                    34736, 1, 1, 3081, 34736, 1, 0, 3082, 34736, 1, 3, 3083, 34736, 1, 4,
                    3092, 34736, 1, 2, 0, 0, 0, 0)),
    (34736, 12, 8, (22.31213333333334, 114.1785555555556, 1.0, 836694.05, 819069.8,
                    6378137.0, 298.2572235604902, 0.0)),
    (34737, 2, 113, 'PCS Name = Transverse_Mercator|GCS Name = GCS_Unknown|Datum = Unknown|'
                    'Ellipsoid = S_Unknown|Primem = Greenwich||'),
    (42113, 2, 4, '256'),
)
GDAL_METADATA = (42112, 2, 0, '<GDALMetadata>\n  <Item name="DataType">Generic</Item>\n'
                 '</GDALMetadata>', True)
HK1980_ORIGIN = (803288.5, 811038.5)  # map x, y of the upper-left pixel corner
HK1980_PIXEL_M = 0.5

# The real AirChange splits (sztaki-airchange/SOURCE.md); test pairs are held back.
AIRCHANGE_SITES = {
    'train': ('szada-2', 'szada-3', 'szada-4', 'szada-5', 'szada-6', 'tiszadob-1',
              'tiszadob-2', 'tiszadob-5'),
    'val': ('szada-7', 'tiszadob-4'),
}


def write_geotiff(path, array, geo, nodata=None):
  """A (H, W) or (H, W, B) array as a GeoTIFF carrying `geo` the way outputs carry it."""
  tifffile.imwrite(path, array, photometric='minisblack' if array.ndim == 2 else 'rgb',
                   compression='zlib', extratags=io.geotiff_extratags(geo, nodata))


def hk1980_geo():
  return io.GeoInfo(HK1980_TAGS)


def write_lantau_like(path, height=150, width=170, seed=0):
  """An RGB uint8 GeoTIFF laid out as the Lantau file (LZW, 128x128 tiles, partial at the
  edges) with its tags; returns the pixels."""
  image = synthetic.generate_scene(seed, height, width)['post']
  tifffile.imwrite(path, image, photometric='rgb', compression='lzw', tile=(128, 128),
                   extratags=[(*t, True) for t in HK1980_TAGS] + [GDAL_METADATA])
  return image


def write_mask_bmp(path, mask):
  """A {0, 1} mask as the AirChange masks are: 8-bit BMP with a 256-grey palette, 0/255."""
  im = Image.fromarray((mask > 0).astype(np.uint8) * 255, 'L').convert('P')
  im.putpalette([v for g in range(256) for v in (g, g, g)])
  im.save(path)


def write_airchange(root, height=80, width=120, seed=0):
  """ROOT/{train,val}/<real site names>/{pre,post,mask}.bmp of synthetic scenes; returns
  {site folder name: mask}."""
  masks = {}
  for split, names in AIRCHANGE_SITES.items():
    for i, name in enumerate(names):
      folder = root / split / name
      folder.mkdir(parents=True)
      scene = synthetic.generate_scene(seed + i + (100 if split == 'val' else 0), height, width)
      for stem in ('pre', 'post'):
        Image.fromarray(scene[stem]).save(folder / f'{stem}.bmp')
      write_mask_bmp(folder / 'mask.bmp', scene['mask'])
      masks[name] = scene['mask']
  return masks
