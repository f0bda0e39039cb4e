"""scene_outputs: one nodata rule and one set of tags for eval's and predict's rasters,
every one a Cloud-Optimized GeoTIFF."""
import numpy as np
import pytest
import tifffile

from dpfcn_jax import scene_outputs
from dpfcn_jax.data import io

GRID = ((io.TAG_PIXEL_SCALE, 12, 3, (0.5, 0.5, 0.0)),
        (io.TAG_TIEPOINT, 12, 6, (0.0, 0.0, 0.0, 1000.0, 2000.0, 0.0)))


def _geo(nodata=None):
  extra = ((io.TAG_NODATA, 2, len(nodata) + 1, nodata),) if nodata is not None else ()
  return io.GeoInfo(GRID + extra)


@pytest.mark.parametrize('nodata,dtype,lo,hi,fallback,any_invalid,expected', [
    (None, np.uint8, 0, 1, 255, True, (None, 255)),      # no nodata: no tag written
    ('0', np.uint8, 0, 1, 255, True, (255, 255)),        # 0 is a LIM value: replaced
    ('0', np.float32, 0.0, 1.0, np.nan, True, (np.nan, np.nan)),
    ('256', np.uint8, 0, 1, 255, False, (None, 255)),    # no nodata pixels: tag copied
    ('256', np.uint8, 0, 1, 255, True, (255, 255)),      # uint8 cannot hold 256
    ('-9999', np.float32, 0.0, 1.0, np.nan, True, (None, -9999.0)),
])
def test_nodata_rule(nodata, dtype, lo, hi, fallback, any_invalid, expected):
  tag, fill = scene_outputs.output_nodata(_geo(nodata), dtype, lo, hi, fallback, any_invalid)
  np.testing.assert_equal((tag, fill), expected)


def _cog_validate():
  return pytest.importorskip('rio_cogeo.cogeo', reason='GDAL checks need the test '
                             'extras').cog_validate


def _tags(path):
  with tifffile.TiffFile(path) as tif:
    return {t.code: t.value for t in tif.pages[0].tags.values() if t.code in io.GEO_TAGS}


def test_eval_site_products_follow_the_rule_and_keep_the_grid(tmp_path):
  rng = np.random.default_rng(0)
  prob = rng.random((40, 50)).astype(np.float32)
  valid = np.ones((40, 50), bool)
  valid[:3] = False
  mask = (rng.random((40, 50)) > 0.7).astype(np.uint8)
  scene_outputs.write_site(tmp_path, 's', prob, prob > 0.5, valid, _geo('0'), mask)
  lim, p = tifffile.imread(tmp_path / 'lim_s.tif'), tifffile.imread(tmp_path / 'probability_s.tif')
  assert (lim[:3] == scene_outputs.LIM_NODATA).all() and np.isnan(p[:3]).all()
  np.testing.assert_array_equal(lim[3:], prob[3:] > 0.5)
  np.testing.assert_array_equal(p[3:], prob[3:])
  for name, nodata in (('lim_s.tif', '255'), ('probability_s.tif', 'nan')):
    tags = _tags(tmp_path / name)
    assert tags[io.TAG_NODATA] == nodata
    assert tags[io.TAG_TIEPOINT] == GRID[1][3] and tags[io.TAG_PIXEL_SCALE] == GRID[0][3]
    assert _cog_validate()(tmp_path / name, quiet=True) == (True, [], [])
  assert (tmp_path / 'map_s.png').exists()


def test_lim_writer_error_map_drops_the_nodata_tag(tmp_path):
  pred = np.eye(8, dtype=bool)
  with scene_outputs.LimWriter(tmp_path, 8, 8, _geo('256'), any_invalid=False,
                               errors=True) as writer:
    writer.write(pred, np.ones((8, 8), bool), np.zeros((8, 8), np.uint8))
  assert _tags(tmp_path / 'lim.tif')[io.TAG_NODATA] == '256'  # copied: no value collides
  assert io.TAG_NODATA not in _tags(tmp_path / 'error_map.tif')
  assert (tifffile.imread(tmp_path / 'error_map.tif')[pred] == (0, 255, 255)).all()
  assert _cog_validate()(tmp_path / 'error_map.tif', quiet=True) == (True, [], [])
