"""Band-wise raster reading (every TIFF layout) and writing, against whole-array io."""
import logging

import numpy as np
import pytest
import tifffile
from PIL import Image

from dpfcn_jax.data import io, streaming
from dpfcn_jax.errors import InputError

import fixture_data
from conftest import real_data
logging.getLogger('tifffile').setLevel(logging.ERROR)

LAYOUTS = {
    'tiled_zlib': dict(tile=(16, 32), compression='zlib'),
    'stripped_lzw': dict(rowsperstrip=7, compression='lzw'),
    'contiguous': dict(),
    'planar_tiled': dict(tile=(16, 16), compression='zlib', planarconfig='separate'),
    'planar_contiguous': dict(planarconfig='separate'),
}


def _bands(reader, rng):
  """Reads the raster in random, overlapping and backtracking bands, like a window sweep."""
  h = reader.shape[0]
  out = np.zeros(reader.shape, reader.dtype)
  r = 0
  while r < h:
    r1 = min(h, r + int(rng.integers(1, 40)))
    out[r:r1] = reader.rows(r, r1)
    r = max(0, r1 - int(rng.integers(0, 10))) if r1 < h else h
  return out


@pytest.mark.parametrize('layout', sorted(LAYOUTS))
def test_row_reader_matches_whole_read(tmp_path, layout):
  rng = np.random.default_rng(0)
  array = rng.integers(0, 65535, (77, 53, 3), dtype=np.uint16)
  path = tmp_path / 'x.tif'
  planes = LAYOUTS[layout].get('planarconfig') == 'separate'  # tifffile wants (B, H, W) then
  tifffile.imwrite(path, np.moveaxis(array, -1, 0) if planes else array, photometric='rgb',
                   **LAYOUTS[layout])
  with streaming.RowReader(path) as reader:
    assert reader.shape == array.shape
    np.testing.assert_array_equal(_bands(reader, rng), array)


@pytest.mark.parametrize('source', ['stand-in', 'real'])
def test_row_reader_geotiff_and_pil(tmp_path, source):
  if source == 'real':
    geotiff = real_data('lantau-siteA-post-only', 'A', 'post.tif')
  else:
    geotiff = tmp_path / 'lantau.tif'
    fixture_data.write_lantau_like(geotiff, 300, 270)  # several tiles each way
  with streaming.RowReader(geotiff) as reader:
    whole, geo = io.read_array(geotiff)
    assert reader.geo == geo
    np.testing.assert_array_equal(_bands(reader, np.random.default_rng(1)), whole)
  grey = np.random.default_rng(2).integers(0, 255, (30, 20), dtype=np.uint8)
  Image.fromarray(grey).save(tmp_path / 'g.png')
  with streaming.RowReader(tmp_path / 'g.png') as reader:
    assert reader.shape == (30, 20, 1) and reader.geo is None
    np.testing.assert_array_equal(reader.rows(5, 9)[..., 0], grey[5:9])


def test_row_reader_errors(tmp_path):
  with pytest.raises(InputError, match='not found'):
    streaming.RowReader(tmp_path / 'missing.tif')
  (tmp_path / 'junk.tif').write_bytes(b'not a tiff at all')
  with pytest.raises(InputError, match='not a readable image'):
    streaming.RowReader(tmp_path / 'junk.tif')
  path = tmp_path / 'cut.tif'
  tifffile.imwrite(path, np.ones((64, 64), np.uint8), tile=(16, 16), compression='zlib')
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])  # the last tiles point past the end
  with streaming.RowReader(path) as reader:
    with pytest.raises(InputError, match='cannot be decoded'):
      reader.rows(0, 64)


@pytest.mark.parametrize('rgb', [False, True])
def test_row_writer_round_trip_with_geotags(tmp_path, rgb):
  rng = np.random.default_rng(3)
  shape = (300, 270, 3) if rgb else (300, 270)
  array = rng.integers(0, 255, shape, dtype=np.uint8)
  geo = fixture_data.hk1980_geo()
  path = tmp_path / 'out.tif'
  with streaming.RowWriter(path, 300, 270, np.uint8, geo, rgb=rgb) as writer:
    r = 0
    while r < 300:
      k = int(rng.integers(1, 120))
      writer.write(array[r:r + k])
      r += k
  np.testing.assert_array_equal(tifffile.imread(path), array)
  _, back = io.read_array(path)
  assert back == geo


def test_row_writer_refuses_missing_rows_and_stops_on_error(tmp_path):
  writer = streaming.RowWriter(tmp_path / 'a.tif', 10, 4, np.float32)
  writer.write(np.zeros((3, 4)))
  with pytest.raises(ValueError, match='3 of 10 rows'):
    writer.close()
  with pytest.raises(RuntimeError):
    with streaming.RowWriter(tmp_path / 'b.tif', 10, 4, np.float32) as w:
      w.write(np.zeros((5, 4)))
      raise RuntimeError('model failed')
  assert not w._thread.is_alive()  # pylint: disable=protected-access
