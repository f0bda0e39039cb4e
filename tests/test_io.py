"""Reading, validation errors (each naming the file), georeferencing round trip."""
import numpy as np
import pytest
import tifffile
from PIL import Image

import fixture_data
from conftest import real_data
from dpfcn_jax.data import io
from dpfcn_jax.errors import InputError

LANTAU = ('lantau-siteA-post-only', 'A', 'post.tif')


@pytest.fixture
def lantau_like(tmp_path):
  path = tmp_path / 'lantau.tif'
  fixture_data.write_lantau_like(path)
  return path


def _site(tmp_path, pre=None, post=None, mask=None, ext='png'):
  rng = np.random.default_rng(0)
  pre = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8) if pre is None else pre
  post = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8) if post is None else post
  mask = (rng.random((32, 48)) > 0.8).astype(np.uint8) * 255 if mask is None else mask
  for name, a in (('pre', pre), ('post', post), ('mask', mask)):
    if ext == 'tif':
      tifffile.imwrite(tmp_path / f'{name}.tif', a)
    else:
      Image.fromarray(a).save(tmp_path / f'{name}.{ext}')
  return tmp_path


def test_airchange_layout_site_loads_with_binarised_mask(tmp_path):
  masks = fixture_data.write_airchange(tmp_path, height=40, width=56)
  site = io.load_site(tmp_path / 'val' / 'tiszadob-4', bands=3, threshold=127)
  assert site.name == 'tiszadob-4' and site.pre.shape == site.post.shape == (40, 56, 3)
  assert site.pre.dtype == np.float32 and 0 <= site.pre.min() and site.pre.max() <= 1
  np.testing.assert_array_equal(site.mask, masks['tiszadob-4'])
  assert site.mask.any() and site.geo is None and site.valid.all()


def test_real_airchange_site_loads_with_binarised_mask():
  site = io.load_site(real_data('sztaki-airchange', 'val', 'tiszadob-4'), bands=3,
                      threshold=127)
  assert site.pre.shape == site.post.shape == (640, 952, 3)
  assert site.pre.dtype == np.float32 and 0 <= site.pre.min() and site.pre.max() <= 1
  assert set(np.unique(site.mask)) <= {0, 1}
  # SOURCE.md: changed fraction 0.0045 with mask > 127.
  assert site.mask.mean() == pytest.approx(0.0045, abs=5e-4)
  assert site.geo is None and site.valid.all()


def test_uint16_is_scaled_by_its_full_range(tmp_path):
  a = np.full((8, 8, 3), 65535, np.uint16)
  a[0, 0] = 0
  tifffile.imwrite(tmp_path / 'x.tif', a)
  r = io.read_raster(tmp_path / 'x.tif', 3)
  assert r.data.max() == 1.0 and r.data.min() == 0.0


def test_stand_ins_carry_what_the_real_files_have(tmp_path):
  with tifffile.TiffFile(real_data(*LANTAU)) as tif:
    page = tif.pages[0]
    real = {t.code: (int(t.dtype), t.count, t.value) for t in page.tags.values()
            if t.code in io.GEO_TAGS}
    layout = (page.compression, page.tilelength, page.tilewidth, page.photometric)
  assert real == {c: (d, n, v) for c, d, n, v in fixture_data.HK1980_TAGS}
  fixture_data.write_lantau_like(tmp_path / 'l.tif')
  with tifffile.TiffFile(tmp_path / 'l.tif') as tif:
    page = tif.pages[0]
    assert (page.compression, page.tilelength, page.tilewidth, page.photometric) == layout
  fixture_data.write_airchange(tmp_path / 'ac', 32, 32)
  for split, names in fixture_data.AIRCHANGE_SITES.items():
    real_site = real_data('sztaki-airchange', split, names[0])
    for stem in ('pre', 'post', 'mask'):
      ours, theirs = tmp_path / 'ac' / split / names[0] / f'{stem}.bmp', real_site / f'{stem}.bmp'
      with Image.open(ours) as a, Image.open(theirs) as b:
        assert a.mode == b.mode  # the mask: 8 bits with a grey palette, read as 'L'
      assert ours.read_bytes()[28:30] == theirs.read_bytes()[28:30]  # bits per pixel
    assert sorted(p.name for p in real_site.parent.iterdir()) == sorted(names)


def test_geotiff_tags_survive_a_write_read_round_trip(tmp_path, lantau_like):
  r = io.read_raster(lantau_like, 3)
  assert r.geo == fixture_data.hk1980_geo()
  assert r.geo.pixel_area == pytest.approx(0.25)  # 0.5 m pixels, Hong Kong 1980 Grid
  x, y = r.geo.pixel_to_map(0, 0)
  assert (x, y) == pytest.approx(fixture_data.HK1980_ORIGIN)
  fixture_data.write_geotiff(tmp_path / 'out.tif', (r.data[..., 0] > 0.5).astype(np.uint8), r.geo)
  assert io.read_raster(tmp_path / 'out.tif', 1).geo == r.geo


def test_window_shifts_the_tiepoint_only():
  geo = fixture_data.hk1980_geo()
  w = geo.window(10, 20)
  assert w.pixel_to_map(0, 0) == pytest.approx(geo.pixel_to_map(10, 20))
  assert w.tag(34735) == geo.tag(34735)


@pytest.mark.parametrize('case,match', [
    ('missing', 'file not found'),
    ('not_image', 'not a readable image'),
    ('truncated', 'not a readable image'),
    ('bad_suffix', 'unsupported file type'),
])
def test_unreadable_files_name_the_file(tmp_path, case, match):
  path = tmp_path / 'pre.tif'
  if case == 'not_image':
    path.write_text('hello')
  elif case == 'truncated':
    tifffile.imwrite(path, np.zeros((64, 64, 3), np.uint8))
    path.write_bytes(path.read_bytes()[:200])
  elif case == 'bad_suffix':
    path = tmp_path / 'pre.gif'
    path.write_bytes(b'GIF89a')
  with pytest.raises(InputError, match=match) as e:
    io.read_raster(path, 3)
  assert str(path) in str(e.value)


def test_wrong_band_count(tmp_path):
  tifffile.imwrite(tmp_path / 'x.tif', np.zeros((8, 8, 5), np.uint8))
  with pytest.raises(InputError, match='has 5 bands, the config expects 3'):
    io.read_raster(tmp_path / 'x.tif', 3)


def test_unsupported_dtype(tmp_path):
  tifffile.imwrite(tmp_path / 'x.tif', np.zeros((8, 8, 3), np.int32))
  with pytest.raises(InputError, match='unsupported pixel type int32'):
    io.read_raster(tmp_path / 'x.tif', 3)


def test_nan_in_float_raster(tmp_path):
  a = np.zeros((8, 8, 3), np.float32)
  a[2, 3, 1] = np.nan
  tifffile.imwrite(tmp_path / 'x.tif', a)
  with pytest.raises(InputError, match='NaN/Inf'):
    io.read_raster(tmp_path / 'x.tif', 3)


def test_all_nodata_scene(tmp_path):
  tifffile.imwrite(tmp_path / 'x.tif', np.zeros((8, 8, 3), np.uint8),
                   extratags=[(42113, 2, 0, '0', True)])
  with pytest.raises(InputError, match='every pixel is nodata'):
    io.read_raster(tmp_path / 'x.tif', 3)


def test_pre_post_size_mismatch(tmp_path):
  _site(tmp_path, post=np.zeros((32, 40, 3), np.uint8))
  with pytest.raises(InputError, match='post.png: size 40x32'):
    io.load_site(tmp_path, 3, 127)


def test_mask_size_mismatch(tmp_path):
  _site(tmp_path, mask=np.zeros((30, 48), np.uint8))
  with pytest.raises(InputError, match='mask.png: mask size 48x30'):
    io.load_site(tmp_path, 3, 127)


def test_mask_threshold_is_configurable(tmp_path):
  mask = np.zeros((32, 48), np.uint8)
  mask[0, :3] = (100, 128, 255)
  _site(tmp_path, mask=mask)
  assert io.load_site(tmp_path, 3, 127).mask.sum() == 2
  assert io.load_site(tmp_path, 3, 0).mask.sum() == 3


def test_georeferencing_disagreement(tmp_path):
  geo = fixture_data.hk1980_geo()
  a = np.zeros((16, 16, 3), np.uint8)
  fixture_data.write_geotiff(tmp_path / 'pre.tif', a, geo)
  fixture_data.write_geotiff(tmp_path / 'post.tif', a, geo.window(5, 5))
  tifffile.imwrite(tmp_path / 'mask.tif', np.zeros((16, 16), np.uint8))
  with pytest.raises(InputError, match='georeferencing disagrees'):
    io.load_site(tmp_path, 3, 127)


def test_missing_and_ambiguous_site_files(tmp_path):
  with pytest.raises(InputError, match='site folder not found'):
    io.load_site(tmp_path / 'nope', 3, 127)
  _site(tmp_path)
  (tmp_path / 'mask.png').unlink()
  with pytest.raises(InputError, match='no mask image'):
    io.load_site(tmp_path, 3, 127)
  Image.fromarray(np.zeros((32, 48, 3), np.uint8)).save(tmp_path / 'pre.bmp')
  with pytest.raises(InputError, match='several pre images'):
    io.load_site(tmp_path, 3, 127)
