"""Fuzzing the image readers and the site loader: any file either loads as
specified or raises InputError, never another exception, a hang or a crash.

The suite draws a fixed set of examples, so it is repeatable; setting
FUZZ_EXAMPLES=N in the environment draws N fresh random ones instead, to search longer.
"""
import contextlib
import io as bytes_io
import os
import pathlib
import shutil
import tempfile
import time

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from dpfcn_jax.data import io
from dpfcn_jax.errors import InputError

EXAMPLES = int(os.environ.get('FUZZ_EXAMPLES', '60'))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                derandomize='FUZZ_EXAMPLES' not in os.environ, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
HANG_S = 10.0      # one tiny file may take this long at most, even on a loaded host
BANDS, THRESHOLD = 3, 127
DTYPES = ('uint8', 'uint16', 'int8', 'int16', 'int32', 'uint32', 'float16', 'float32',
          'float64', 'bool', 'complex64')


@contextlib.contextmanager
def _folder():
  path = pathlib.Path(tempfile.mkdtemp(prefix='fuzz-'))
  try:
    yield path
  finally:
    shutil.rmtree(path)


def _loads_or_input_error(read, *args):
  """read(*args), or None where it raised InputError; any other exception fails."""
  t0 = time.monotonic()
  try:
    return read(*args)
  except InputError as e:
    assert str(args[0]) in str(e)  # the message names the file or folder
    return None
  finally:
    assert time.monotonic() - t0 < HANG_S


def _check_raster(r):
  if r is None:
    return
  assert r.data.dtype == np.float32 and r.data.ndim == 3 and r.data.shape[-1] == BANDS
  assert np.isfinite(r.data).all() and r.data.min() >= 0 and r.data.max() <= 1
  assert r.valid.dtype == bool and r.valid.shape == r.data.shape[:2] and r.valid.any()


def _check_mask(m):
  if m is None:
    return
  assert m.dtype == np.uint8 and m.ndim == 2 and set(np.unique(m)) <= {0, 1}


def _encode(fmt, array):
  """Bytes of `array` saved as `fmt` ('tif', 'tif-zlib', 'tif-tiled', 'png', 'bmp', 'jpg')."""
  buf = bytes_io.BytesIO()
  if fmt.startswith('tif'):
    tifffile.imwrite(buf, array, photometric='rgb' if array.ndim == 3 else 'minisblack',
                     compression='zlib' if fmt == 'tif-zlib' else None,
                     tile=(16, 16) if fmt == 'tif-tiled' else None)
  else:
    Image.fromarray(array).save(buf, format={'jpg': 'JPEG'}.get(fmt, fmt.upper()))
  return buf.getvalue()


SUFFIX = {'tif': '.tif', 'tif-zlib': '.tif', 'tif-tiled': '.tif', 'png': '.png', 'bmp': '.bmp',
          'jpg': '.jpg'}


@st.composite
def images(draw):
  """(format, uint8 array) of a small valid image, colour or grey."""
  fmt = draw(st.sampled_from(sorted(SUFFIX)))
  h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
  shape = (h, w, 3) if draw(st.booleans()) else (h, w)
  seed = draw(st.integers(0, 2**16))
  return fmt, np.random.default_rng(seed).integers(0, 256, shape, np.uint8)


@st.composite
def mutated(draw):
  """Bytes of a valid image after truncation and/or overwritten bytes."""
  fmt, array = draw(images())
  data = bytearray(_encode(fmt, array))
  for _ in range(draw(st.integers(0, 8))):
    data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
  if draw(st.booleans()):
    data = data[:draw(st.integers(0, len(data)))]
  return SUFFIX[fmt], bytes(data)


# Headers of TIFF (both byte orders, BigTIFF), PNG and BMP, to get past the first check.
MAGIC = (b'', b'II*\x00', b'MM\x00*', b'II+\x00\x08\x00\x00\x00', b'\x89PNG\r\n\x1a\n', b'BM')


@given(suffix=st.sampled_from(sorted(set(SUFFIX.values()))), magic=st.sampled_from(MAGIC),
       data=st.binary(max_size=2048))
@FUZZ
def test_random_bytes(suffix, magic, data):
  with _folder() as d:
    path = d / f'x{suffix}'
    path.write_bytes(magic + data)
    _check_raster(_loads_or_input_error(io.read_raster, path, BANDS))
    _check_mask(_loads_or_input_error(io.read_mask, path, THRESHOLD))


@given(file=mutated())
@FUZZ
def test_mutated_and_truncated_files(file):
  suffix, data = file
  with _folder() as d:
    path = d / f'x{suffix}'
    path.write_bytes(data)
    _check_raster(_loads_or_input_error(io.read_raster, path, BANDS))
    _check_mask(_loads_or_input_error(io.read_mask, path, THRESHOLD))


@st.composite
def arrays(draw):
  """Arrays of any small shape and dtype, floats with NaN/Inf and out-of-range values."""
  dtype = np.dtype(draw(st.sampled_from(DTYPES)))
  ndim = draw(st.integers(1, 4))
  shape = tuple(draw(st.lists(st.integers(1, 9), min_size=ndim, max_size=ndim)))
  rng = np.random.default_rng(draw(st.integers(0, 2**16)))
  if dtype.kind == 'f':
    a = rng.choice(np.array([0, 0.25, 1, -1, 2, np.nan, np.inf], dtype),
                   size=shape, p=[0.3, 0.3, 0.3, 0.025, 0.025, 0.025, 0.025])
  elif dtype.kind == 'c':
    a = rng.random(shape).astype(dtype)
  elif dtype.kind == 'b':
    a = rng.random(shape) > 0.5
  else:
    info = np.iinfo(dtype)
    a = rng.integers(info.min, info.max, shape, dtype, endpoint=True)
  return a


@given(a=arrays(), planar=st.booleans(), nodata=st.sampled_from([None, 0, 255, -1, 'x']))
@FUZZ
def test_any_shape_and_dtype_written_by_tifffile(a, planar, nodata):
  with _folder() as d:
    path = d / 'x.tif'
    tags = [] if nodata is None else [(42113, 2, 0, str(nodata), True)]
    try:
      tifffile.imwrite(path, a, planarconfig='separate' if planar and a.ndim == 3 else None,
                       photometric='minisblack', extratags=tags)
    except Exception:  # pylint: disable=broad-except
      return  # tifffile cannot store it: nothing to read
    _check_raster(_loads_or_input_error(io.read_raster, path, BANDS))
    _check_mask(_loads_or_input_error(io.read_mask, path, THRESHOLD))


PARTS = ('good', 'other size', 'grey', 'bytes', 'mutated', 'missing', 'two files')


@given(parts=st.fixed_dictionaries({n: st.sampled_from(PARTS) for n in ('pre', 'post', 'mask')}),
       junk=mutated(), seed=st.integers(0, 2**16))
@FUZZ
def test_load_site_of_any_mix_of_files(parts, junk, seed):
  rng = np.random.default_rng(seed)
  shape = (24, 20)
  with _folder() as d:
    for name, part in parts.items():
      colour = shape + (3,) if name != 'mask' else shape
      if part == 'good':
        Image.fromarray(rng.integers(0, 256, colour, np.uint8)).save(d / f'{name}.png')
      elif part == 'other size':
        Image.fromarray(rng.integers(0, 256, (9, 7, 3), np.uint8)).save(d / f'{name}.png')
      elif part == 'grey':
        tifffile.imwrite(d / f'{name}.tif', rng.integers(0, 256, shape, np.uint8))
      elif part == 'bytes':
        (d / f'{name}.bmp').write_bytes(rng.bytes(64))
      elif part == 'mutated':
        (d / f'{name}{junk[0]}').write_bytes(junk[1])
      elif part == 'two files':
        for suffix in ('.png', '.bmp'):
          Image.fromarray(rng.integers(0, 256, colour, np.uint8)).save(d / f'{name}{suffix}')
    site = _loads_or_input_error(io.load_site, d, BANDS, THRESHOLD)
    if site is not None:
      assert not {'missing', 'bytes', 'two files'} & set(parts.values())
      assert 'grey' not in (parts['pre'], parts['post'])  # one band where three are needed
      assert site.pre.shape == site.post.shape and site.mask.shape == site.pre.shape[:2]
      assert site.valid.shape == site.mask.shape


def test_tiff_with_a_corrupt_height_fails_fast():
  # Found by test_mutated_and_truncated_files: one flipped byte of ImageLength made a
  # 1-row TIFF declare millions of 1-row strips, each visited by the decoder.
  buf = bytes_io.BytesIO()
  tifffile.imwrite(buf, np.zeros((1, 17), np.uint8), compression='zlib', rowsperstrip=1)
  data = bytearray(buf.getvalue())
  ifd = int.from_bytes(data[4:8], 'little')
  for i in range(int.from_bytes(data[ifd:ifd + 2], 'little')):
    entry = ifd + 2 + 12 * i
    if data[entry:entry + 4] == b'\x01\x01\x04\x00':  # ImageLength, LONG
      data[entry + 8:entry + 12] = (2**24).to_bytes(4, 'little')
  with _folder() as d:
    (d / 'x.tif').write_bytes(bytes(data))
    t0 = time.monotonic()
    with pytest.raises(InputError, match=f'corrupt TIFF: 1 strips or tiles where its size '
                                         f'needs {2**24}'):
      io.read_raster(d / 'x.tif', BANDS)
    assert time.monotonic() - t0 < HANG_S


def test_bmp_with_a_corrupt_height_fails_before_allocating():
  # Found by fuzzing: a 1 KB BMP whose height read 503316481 made Pillow allocate 4 GB
  # (one row at a time) before it found the file truncated.
  buf = bytes_io.BytesIO()
  Image.fromarray(np.zeros((1, 1), np.uint8)).save(buf, format='BMP')
  data = bytearray(buf.getvalue())
  data[22:26] = (2**24).to_bytes(4, 'little')  # biHeight
  with _folder() as d:
    (d / 'x.bmp').write_bytes(bytes(data))
    with pytest.raises(InputError, match=f'corrupt header: 1x{2**24} pixels'):
      io.read_raster(d / 'x.bmp', BANDS)
