"""predict: georeferenced Cloud-Optimized GeoTIFFs of a GeoTIFF (the Lantau file, or its
stand-in), any scene size streamed to the in-memory result, inventory consistent with the
map, scoring, errors, atomic output."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
import rasterio
import tifffile
from PIL import Image
from scipy import ndimage

from dpfcn_jax import checkpoint, inference, metrics, predict_lib, scene_map, train_state
from dpfcn_jax.data import io, synthetic
from dpfcn_jax.errors import InputError

import fixture_data
from conftest import REPO, load_config, real_data

FAST = {'tile': 32, 'stride': 24, 'batch_size': 4}


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
  """A checkpoint of a random tiny DP-FCN with its config, as training leaves one."""
  c = load_config('synthetic')
  c.model.width, c.model.depth, c.data.tile, c.infer.stride = 4, 2, 32, 24
  c.model.keep_prob = 0.9  # MC dropout needs dropout
  path = tmp_path_factory.mktemp('work')
  state = train_state.create_train_state(c, jax.random.key(0, impl=c.prng_impl))
  checkpoint.save(checkpoint.manager(str(path)), jax.device_get(state), c)
  return str(path)


def _shoelace(ring):
  x, y = np.asarray(ring).T
  return 0.5 * np.sum(x[:-1] * y[1:] - x[1:] * y[:-1])


def _tags(path):
  with tifffile.TiffFile(path) as tif:
    return {t.code: t.value for t in tif.pages[0].tags.values() if t.code in io.GEO_TAGS}


@pytest.fixture
def geotiff(tmp_path):
  """A GeoTIFF with the Lantau file's Hong Kong 1980 Grid tags and layout."""
  path = tmp_path / 'scene.tif'
  fixture_data.write_lantau_like(path, 150, 170)
  return path


@pytest.mark.parametrize('source', ['stand-in', 'real'])
def test_cli_on_a_geotiff_keeps_georeferencing(workdir, tmp_path, source, request):
  scene = (real_data('lantau-siteA-post-only', 'A', 'post.tif') if source == 'real'
           else request.getfixturevalue('geotiff'))
  cog_validate = pytest.importorskip('rio_cogeo.cogeo', reason='GDAL checks need the test '
                                     'extras').cog_validate
  out = tmp_path / 'lantau'
  cmd = [sys.executable, '-m', 'dpfcn_jax.predict', f'--workdir={workdir}', f'--pre={scene}',
         f'--post={scene}', f'--out={out}', '--tile=64', '--stride=48', '--min_area_m2=2']
  done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
  assert done.returncode == 0, done.stderr
  assert 'landslides' in done.stdout and 'windows/s' in done.stderr
  reference = _tags(scene)
  assert set(reference) >= {33550, 33922, 34735, 34736, 34737, 42113}
  with rasterio.open(scene) as src:
    crs, transform = src.crs, src.transform
  for name in ('probability.tif', 'lim.tif'):
    tags = _tags(out / name)
    for code in (33550, 33922, 42113):  # the grid and nodata tags copied unchanged
      assert tags[code] == reference[code]
    with rasterio.open(out / name) as r:  # the GeoKeys are GDAL's, of the same CRS
      assert r.crs == crs and r.transform == transform
    assert cog_validate(out / name, quiet=True) == (True, [], [])
  h, w = tifffile.imread(scene).shape[:2]
  assert tifffile.imread(out / 'probability.tif').shape == (h, w)
  collection = json.loads((out / 'inventory.geojson').read_text())
  x0, y0 = fixture_data.HK1980_ORIGIN  # upper-left corner, Hong Kong 1980 Grid metres
  x1, y1 = x0 + w * 0.5, y0 - h * 0.5
  assert collection['features']
  for feature in collection['features']:
    rings = [np.asarray(r) for r in feature['geometry']['coordinates']]
    for ring in rings:
      assert np.all((ring[:, 0] >= x0) & (ring[:, 0] <= x1) & (ring[:, 1] >= y1)
                    & (ring[:, 1] <= y0))
    props = feature['properties']
    assert sum(_shoelace(r) for r in rings) == props['area_m2'] == props['pixels'] * 0.25
    assert props['area_m2'] >= 2
  lim = tifffile.imread(out / 'lim.tif')
  assert lim.sum() * 0.25 == sum(f['properties']['area_m2'] for f in collection['features'])
  assert Image.open(out / 'quicklook.png').size == (w, h)
  assert not list(tmp_path.glob('.lantau*'))  # no scratch folder left


def test_any_size_scene_streams_to_the_in_memory_result(workdir, tmp_path):
  h, w = 150, 170  # not multiples of the window
  s = synthetic.generate_scene(11, h, w)
  paths = {}
  for name in ('pre', 'post'):  # odd tiles: windows straddle the TIFF's segments
    paths[name] = tmp_path / f'{name}.tif'
    tifffile.imwrite(paths[name], s[name], photometric='rgb', tile=(48, 64), compression='zlib')
  summary = predict_lib.predict(workdir, paths['pre'], paths['post'], tmp_path / 'out',
                            overrides=FAST)
  model, params, _ = scene_map.restore_params(workdir)
  expected, _ = inference.scene_probability(
      inference.make_infer_fn(model), params, s['pre'] / np.float32(255),
      s['post'] / np.float32(255), 32, 24, 4)
  prob = tifffile.imread(tmp_path / 'out' / 'probability.tif')
  np.testing.assert_allclose(prob, expected, atol=1e-6)
  lim = tifffile.imread(tmp_path / 'out' / 'lim.tif')
  np.testing.assert_array_equal(lim, prob > scene_map.THRESHOLD)
  collection = json.loads((tmp_path / 'out' / 'inventory.geojson').read_text())
  assert 'pixel coordinates' in collection['note']
  labels, n = ndimage.label(lim)
  assert len(collection['features']) == n == summary['landslides']
  sizes = np.bincount(labels.ravel())[1:]
  for feature, size in zip(collection['features'], sizes):
    assert feature['properties']['area_px2'] == size
    assert sum(_shoelace(r) for r in feature['geometry']['coordinates']) == size


@pytest.mark.filterwarnings('ignore::rasterio.errors.NotGeoreferencedWarning')  # PNG inputs
def test_mask_scoring_and_mc_uncertainty(workdir, tmp_path):
  s = synthetic.generate_scene(12, 90, 100)
  for name in ('pre', 'post'):
    Image.fromarray(s[name]).save(tmp_path / f'{name}.png')
  Image.fromarray(s['mask'] * 255).save(tmp_path / 'mask.png')
  summary = predict_lib.predict(workdir, tmp_path / 'pre.png', tmp_path / 'post.png',
                            tmp_path / 'out', tmp_path / 'mask.png',
                            overrides={**FAST, 'mc_samples': 2, 'fill_holes': True})
  out = tmp_path / 'out'
  lim = tifffile.imread(out / 'lim.tif')
  expected = metrics.site_report(*metrics.confusion(lim, s['mask']))
  assert json.loads((out / 'metrics.json').read_text()) == expected == summary['metrics']
  errors = tifffile.imread(out / 'error_map.tif')
  assert errors.shape == (90, 100, 3)
  assert np.all(errors[(lim == 1) & (s['mask'] == 0)] == (0, 255, 255))  # false alarms aqua
  std = tifffile.imread(out / 'uncertainty.tif')
  assert std.shape == (90, 100) and std.min() >= 0 and std.max() > 0
  cog_validate = pytest.importorskip('rio_cogeo.cogeo').cog_validate
  for name in ('probability.tif', 'lim.tif', 'uncertainty.tif', 'error_map.tif'):
    assert cog_validate(out / name, quiet=True) == (True, [], []), name
  header = (out / 'inventory.csv').read_text().splitlines()[0]
  assert header.endswith('mean_uncertainty')


def test_input_errors_leave_no_outputs(workdir, tmp_path):
  s = synthetic.generate_scene(13, 64, 64)
  tifffile.imwrite(tmp_path / 'pre.tif', s['pre'], photometric='rgb')
  tifffile.imwrite(tmp_path / 'small.tif', s['post'][:60], photometric='rgb')
  with pytest.raises(InputError, match='differs'):
    predict_lib.predict(workdir, tmp_path / 'pre.tif', tmp_path / 'small.tif', tmp_path / 'o1')
  geo = [(33550, 12, 3, (0.5, 0.5, 0.0), True), (33922, 12, 6, (0, 0, 0, 1000.0, 2000.0, 0), True)]
  moved = [geo[0], (33922, 12, 6, (0, 0, 0, 1010.0, 2000.0, 0), True)]
  for name, tags in (('a.tif', geo), ('b.tif', moved)):
    tifffile.imwrite(tmp_path / name, s['pre'], photometric='rgb', extratags=tags)
  with pytest.raises(InputError, match='georeferencing disagrees'):
    predict_lib.predict(workdir, tmp_path / 'a.tif', tmp_path / 'b.tif', tmp_path / 'o2')
  # A fault found only after outputs were being written: NaN in the last rows.
  bad = s['post'] / np.float32(255)
  bad[-3:] = np.nan
  tifffile.imwrite(tmp_path / 'nan.tif', bad, photometric='rgb')
  with pytest.raises(InputError, match='NaN'):
    predict_lib.predict(workdir, tmp_path / 'pre.tif', tmp_path / 'nan.tif', tmp_path / 'o3',
                    overrides=FAST)
  assert sorted(os.listdir(tmp_path)) == ['a.tif', 'b.tif', 'nan.tif', 'pre.tif', 'small.tif']


def test_missing_checkpoint_exits_2(tmp_path, geotiff):
  cmd = [sys.executable, '-m', 'dpfcn_jax.predict', f'--workdir={tmp_path / "none"}',
         f'--pre={geotiff}', f'--post={geotiff}', f'--out={tmp_path / "out"}']
  done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert done.returncode == 2
  assert 'error:' in done.stderr and 'no checkpoint' in done.stderr
  assert not (tmp_path / 'out').exists()
