"""mosaic_vrt: GDAL opens lim.vrt with the mosaic's size, CRS and transform, pixels those
of the tiles (nodata transparent, later scenes on top); one VRT per grid."""
import numpy as np
import pytest

import fixture_data
from dpfcn_jax import mosaic_vrt, scene_outputs
from dpfcn_jax.data import io

rasterio = pytest.importorskip('rasterio', reason='GDAL checks need the test extras')
WarpedVRT = rasterio.vrt.WarpedVRT  # reprojects on the fly, as QGIS draws a raster

EPSG_2326 = io.GeoInfo(((io.TAG_PIXEL_SCALE, 12, 3, (0.5, 0.5, 0.0)),
                        (io.TAG_TIEPOINT, 12, 6, (0.0, 0.0, 0.0, 800000.0, 820000.0, 0.0)),
                        (io.TAG_GEOKEYS, 3, 8, (1, 1, 0, 1, 3072, 0, 1, 2326)),
                        (io.TAG_NODATA, 2, 2, '0')))  # a LIM value: lim.tif gets 255
# (row0, col0, height, width) on one grid; b overlaps a, and nothing covers rows 30-49
# of columns 0-29; d lies in another CRS.
TILES = {'a': (0, 0, 30, 40), 'b': (20, 30, 30, 40), 'c': (0, 70, 30, 20)}


def _lim(folder, geo, h, w, seed):
  rng = np.random.default_rng(seed)
  pred, valid = rng.random((h, w)) > 0.5, np.ones((h, w), bool)
  valid[:5, :5] = False
  folder.mkdir(parents=True)
  with scene_outputs.LimWriter(folder, h, w, geo) as writer:
    writer.write(pred, valid)
  return np.where(valid, pred, scene_outputs.LIM_NODATA)


def test_one_vrt_per_grid_with_the_tiles_pixels(tmp_path):
  expected = np.full((50, 90), scene_outputs.LIM_NODATA, np.uint8)
  for i, (sid, (r0, c0, h, w)) in enumerate(TILES.items()):
    lim = _lim(tmp_path / sid, EPSG_2326.window(r0, c0), h, w, i)
    view = expected[r0:r0 + h, c0:c0 + w]
    view[lim != scene_outputs.LIM_NODATA] = lim[lim != scene_outputs.LIM_NODATA]
  other = _lim(tmp_path / 'd', fixture_data.hk1980_geo(), 20, 30, 9)
  paths = mosaic_vrt.write(str(tmp_path), [*TILES, 'd'])
  assert [p.rsplit('/', 1)[1] for p in paths] == ['lim_1.vrt', 'lim_2.vrt']
  with rasterio.open(tmp_path / 'a' / 'lim.tif') as a, rasterio.open(paths[0]) as vrt:
    assert vrt.shape == (50, 90) and vrt.crs == a.crs and vrt.transform == a.transform
    assert vrt.nodata == scene_outputs.LIM_NODATA
    np.testing.assert_array_equal(vrt.read(1), expected)
    with WarpedVRT(a, crs='EPSG:4326') as wa, WarpedVRT(vrt, crs='EPSG:4326') as wv:
      assert np.allclose((wa.bounds.left, wa.bounds.top), (wv.bounds.left, wv.bounds.top))
  with rasterio.open(tmp_path / 'd' / 'lim.tif') as d, rasterio.open(paths[1]) as vrt:
    assert vrt.crs == d.crs and vrt.transform == d.transform
    np.testing.assert_array_equal(vrt.read(1), other)
  assert not list(tmp_path.glob('.partial*'))


def test_a_rerun_on_one_grid_removes_its_own_earlier_vrts_and_nothing_else(tmp_path):
  for i, (sid, (r0, c0, h, w)) in enumerate(TILES.items()):
    _lim(tmp_path / sid, EPSG_2326.window(r0, c0), h, w, i)
  _lim(tmp_path / 'd', fixture_data.hk1980_geo(), 20, 30, 9)
  assert len(mosaic_vrt.write(str(tmp_path), [*TILES, 'd'])) == 2
  (tmp_path / 'lim_3.vrt').write_text('<VRTDataset>a user\'s own</VRTDataset>')
  assert [p.rsplit('/', 1)[1] for p in mosaic_vrt.write(str(tmp_path), list(TILES))] == [
      'lim.vrt']
  assert sorted(p.name for p in tmp_path.glob('*.vrt')) == ['lim.vrt', 'lim_3.vrt']
