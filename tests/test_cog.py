"""cog: rows in, a Cloud-Optimized GeoTIFF out that GDAL validates, with the input's
georeferencing and nodata, overviews resampled by kind, and no scratch file left."""
import numpy as np
import pytest
import tifffile

import fixture_data
from dpfcn_jax.data import cog, io, streaming
from dpfcn_jax.errors import OutputError

rasterio = pytest.importorskip('rasterio')
cog_validate = pytest.importorskip('rio_cogeo.cogeo', reason='GDAL checks need the test '
                                   'extras').cog_validate

EPSG_2326 = io.GeoInfo(((io.TAG_PIXEL_SCALE, 12, 3, (0.5, 0.5, 0.0)),
                        (io.TAG_TIEPOINT, 12, 6, (0.0, 0.0, 0.0, 800000.0, 820000.0, 0.0)),
                        (io.TAG_GEOKEYS, 3, 8, (1, 1, 0, 1, 3072, 0, 1, 2326))))
H, W = 600, 520  # more than two tiles each way: two overview levels


def _write(path, array, geo, nodata, resampling, rows=100):
  with cog.CogWriter(path, *array.shape[:2], array.dtype, geo, nodata, rgb=array.ndim == 3,
                     resampling=resampling) as writer:
    for r in range(0, len(array), rows):
      writer.write(array[r:r + rows])


def _tags(path):
  with tifffile.TiffFile(path) as tif:
    return {t.code: t.value for t in tif.pages[0].tags.values() if t.code in io.GEO_TAGS}


@pytest.mark.parametrize('geo', [fixture_data.hk1980_geo(), EPSG_2326],
                         ids=['crs-by-parameters', 'epsg'])
def test_a_valid_cog_with_the_inputs_georeferencing(tmp_path, geo):
  rng = np.random.default_rng(0)
  prob = rng.random((H, W)).astype(np.float32)
  prob[:7] = np.nan
  lim = (prob > 0.5).astype(np.uint8)
  lim[:7] = 255
  _write(tmp_path / 'p.tif', prob, geo, 'nan', cog.AVERAGE)
  _write(tmp_path / 'l.tif', lim, geo, 255, cog.MODE)
  reference = tmp_path / 'reference.tif'
  fixture_data.write_geotiff(reference, lim, geo)
  with rasterio.open(reference) as src:
    crs, transform = src.crs, src.transform
  for name, array, nodata in (('p.tif', prob, 'nan'), ('l.tif', lim, '255')):
    assert cog_validate(tmp_path / name, quiet=True) == (True, [], [])
    with rasterio.open(tmp_path / name) as r:
      assert r.crs == crs and r.transform == transform and r.overviews(1) == [2, 4]
      np.testing.assert_array_equal(r.read(1), array)
    tags = _tags(tmp_path / name)
    assert tags[io.TAG_NODATA] == nodata
    for code in (io.TAG_PIXEL_SCALE, io.TAG_TIEPOINT):
      assert tags[code] == geo.tag(code)
    with streaming.RowReader(tmp_path / name) as r:  # GDAL reads the very same CRS back
      assert r.geo.crs_wkt == geo.crs_wkt
  assert sorted(p.name for p in tmp_path.iterdir()) == ['l.tif', 'p.tif', 'reference.tif']


def test_overviews_average_measures_and_vote_classes(tmp_path):
  prob = np.tile(np.float32([[0.0, 0.2], [0.4, 1.0]]), (H // 2, W // 2))
  lim = np.zeros((H, W), np.uint8)
  lim[::2, ::2] = 1  # one pixel in four: the majority of every 2x2 block is 0
  _write(tmp_path / 'p.tif', prob, EPSG_2326, None, cog.AVERAGE)
  _write(tmp_path / 'l.tif', lim, EPSG_2326, None, cog.MODE)
  with rasterio.open(tmp_path / 'p.tif', OVERVIEW_LEVEL=0) as r:
    np.testing.assert_allclose(r.read(1), 0.4, atol=1e-6)
  with rasterio.open(tmp_path / 'l.tif', OVERVIEW_LEVEL=0) as r:
    assert r.shape == (H // 2, W // 2) and not r.read(1).any()


def test_the_scratch_file_never_survives(tmp_path, monkeypatch):
  with pytest.raises(RuntimeError, match='model failed'):
    with cog.CogWriter(tmp_path / 'a.tif', 10, 4, np.float32) as writer:
      writer.write(np.zeros((5, 4)))
      raise RuntimeError('model failed')
  with pytest.raises(ValueError, match='3 of 10 rows'):
    with cog.CogWriter(tmp_path / 'b.tif', 10, 4, np.float32) as writer:
      writer.write(np.zeros((3, 4)))

  def gdal_fails(src, dst, **_):
    with open(dst, 'wb') as f:
      f.write(b'half a file')
    raise rasterio.errors.RasterioIOError('No space left on device')

  monkeypatch.setattr(rasterio.shutil, 'copy', gdal_fails)
  with pytest.raises(OutputError, match=r'c\.tif: GDAL could not write .*No space left'):
    with cog.CogWriter(tmp_path / 'c.tif', 10, 4, np.float32) as writer:
      writer.write(np.zeros((10, 4)))
  assert not list(tmp_path.iterdir())
