"""The scenes' LIMs as one virtual raster per pixel grid: OUT/lim.vrt opens as one map.

A VRT is a small XML file that GDAL, and so QGIS and rasterio, reads as one raster
drawn from others (gdal.org/drivers/raster/vrt.html); rasterio has no builder for
one, and the format is short. Scenes are grouped as the merge groups them
(mosaic.group_tiles); each LIM is a source at its place in its grid, its nodata
pixels transparent, and where tiles overlap the scene later in the manifest lies
on top (the merged inventory instead takes each pixel from the tile it lies
deepest inside). Scenes on one grid give lim.vrt; scenes on several grids (other
CRS or pixel sizes) give lim_1.vrt, lim_2.vrt, ..., each named in the log.
"""
import logging
import os
import re
from xml.sax.saxutils import escape

from dpfcn_jax import mosaic, scene_outputs

LIM = 'lim.tif'
DESCRIPTION = 'landslide inventory map (1 = landslide)'

log = logging.getLogger(__name__)


def _source(tile, folder):
  nodata = tile.geo.nodata
  # A nodata value uint8 cannot hold marks no pixel: nothing to make transparent.
  mask = (f'<NODATA>{nodata:g}</NODATA>' if nodata is not None and nodata.is_integer()
          and 0 <= nodata <= 255 else '')
  return (f'    <ComplexSource>\n'
          f'      <SourceFilename relativeToVRT="1">{escape(os.path.relpath(tile.path, folder))}'
          f'</SourceFilename>\n'
          f'      <SourceBand>1</SourceBand>\n'
          f'      <SrcRect xOff="0" yOff="0" xSize="{tile.width}" ySize="{tile.height}"/>\n'
          f'      <DstRect xOff="{tile.col0}" yOff="{tile.row0}" xSize="{tile.width}" '
          f'ySize="{tile.height}"/>\n'
          f'      {mask}\n'
          f'    </ComplexSource>\n')


def vrt_xml(tiles, folder):
  """The VRT of one group's tiles (positioned by mosaic.group_tiles), paths relative to
  `folder`, where the VRT goes."""
  height = max(t.row0 + t.height for t in tiles)
  width = max(t.col0 + t.width for t in tiles)
  geo = tiles[0].geo.window(-tiles[0].row0, -tiles[0].col0)  # the group's origin
  t = geo.transform
  wkt = geo.crs_wkt
  # GDAL's order: x origin, x per column, x per row, y origin, y per column, y per row.
  transform = ', '.join(repr(float(v)) for v in (t[0, 2], t[0, 0], t[0, 1],
                                                  t[1, 2], t[1, 0], t[1, 1]))
  return (f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">\n'
          # Without an axis mapping GDAL takes x, y as east, north, as the tiles do.
          + (f'  <SRS>{escape(wkt)}</SRS>\n' if wkt else '')
          + f'  <GeoTransform>{transform}</GeoTransform>\n'
          f'  <VRTRasterBand dataType="Byte" band="1">\n'
          f'    <NoDataValue>{scene_outputs.LIM_NODATA}</NoDataValue>\n'
          f'    <Description>{DESCRIPTION}</Description>\n'
          + ''.join(_source(tile, folder) for tile in tiles)
          + '  </VRTRasterBand>\n</VRTDataset>\n')


def write(out, scene_ids):
  """Writes OUT/lim.vrt (or lim_<i>.vrt per grid) over the scenes' lim.tif; returns the
  paths. Scenes without georeferencing are left out, as the merge leaves them out."""
  groups, _ = mosaic.group_tiles(mosaic.read_tiles(out, scene_ids, LIM))
  names = ['lim.vrt'] if len(groups) == 1 else [f'lim_{i}.vrt' for i in range(1, len(groups) + 1)]
  paths = []
  for name, tiles in zip(names, groups):
    path, tmp = os.path.join(out, name), os.path.join(out, f'.partial-{name}')
    with open(tmp, 'w') as f:
      f.write(vrt_xml(tiles, out))
    os.replace(tmp, path)
    paths.append(path)
    if len(groups) > 1:
      log.info('%s: %s', name, ', '.join(t.id for t in tiles))
  _remove_stale(out, names)
  if len(groups) > 1:
    log.warning('the scenes lie on %d pixel grids (CRS or pixel size differ): one LIM mosaic '
                'each, %s', len(groups), ', '.join(names))
  return paths


def _remove_stale(out, names):
  """An earlier run's VRTs that this one did not rewrite (its scenes lay on other grids)
  would show an old mosaic: removed, if ours (they carry DESCRIPTION)."""
  for name in os.listdir(out):
    path = os.path.join(out, name)
    if name not in names and re.fullmatch(r'lim(_\d+)?\.vrt', name):
      with open(path, errors='replace') as f:
        if f'<Description>{DESCRIPTION}</Description>' in f.read():
          os.remove(path)
