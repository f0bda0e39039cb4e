"""Batch mapping: a tiled mosaic mapped by two real processes equals the uncut scene;
a killed batch resumes; a corrupt tile fails alone; GDAL reads and validates every
output, and the LIMs' VRT."""
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
import tifffile

import fixture_data
from conftest import REPO, load_config, real_data
from dpfcn_jax import batch_predict, checkpoint, mosaic, output_dir, scene_outputs, train_state
from dpfcn_jax.data import io, synthetic
from dpfcn_jax.errors import InputError

pyogrio = pytest.importorskip('pyogrio', reason='GDAL checks need the test extras')
rasterio = pytest.importorskip('rasterio')
cog_validate = pytest.importorskip('rio_cogeo.cogeo').cog_validate

TIMEOUT_S = 300
FAST = ['--tile=32', '--stride=24', '--batch_size=4']
GEO = io.GeoInfo(((io.TAG_PIXEL_SCALE, 12, 3, (0.5, 0.5, 0.0)),
                  (io.TAG_TIEPOINT, 12, 6, (0.0, 0.0, 0.0, 800000.0, 820000.0, 0.0)),
                  # ProjectedCSTypeGeoKey = EPSG:2326, Hong Kong 1980 Grid
                  (io.TAG_GEOKEYS, 3, 8, (1, 1, 0, 1, 3072, 0, 1, 2326))))
# 2 x 3 tiles of a 200 x 312 scene, cut at multiples of the 24 px window stride and
# overlapping by 32 px or more (a 32 px window), as mosaic.py asks for an exact merge.
ROWS, COLS = ((0, 128), (72, 200)), ((0, 128), (96, 224), (192, 312))


def _geotiff(path, array, geo):
  path.parent.mkdir(parents=True, exist_ok=True)
  tifffile.imwrite(path, array, photometric='rgb', extratags=io.geotiff_extratags(geo))


@pytest.fixture(scope='module')
def mosaic_case(tmp_path_factory):
  """A random tiny DP-FCN checkpoint, an uncut scene and its six tiles with a manifest."""
  root = tmp_path_factory.mktemp('mosaic')
  c = load_config('synthetic')
  c.model.width, c.model.jfl_width, c.model.depth, c.data.tile, c.infer.stride = 4, 4, 2, 32, 24
  state = train_state.create_train_state(c, jax.random.key(0, impl=c.prng_impl))
  checkpoint.save(checkpoint.manager(str(root / 'work')), jax.device_get(state), c)
  s = synthetic.generate_scene(31, 200, 312)
  for k in ('pre', 'post'):
    _geotiff(root / 'scene' / f'{k}.tif', s[k], GEO)
  with open(root / 'tiles.csv', 'w', newline='') as f:
    rows = csv.writer(f)
    rows.writerow(['id', 'pre', 'post'])
    for i, (r0, r1) in enumerate(ROWS):
      for j, (c0, c1) in enumerate(COLS):
        tid = f't{i}{j}'
        for k in ('pre', 'post'):
          _geotiff(root / 'tiles' / tid / f'{k}.tif', s[k][r0:r1, c0:c1], GEO.window(r0, c0))
        rows.writerow([tid, f'tiles/{tid}/pre.tif', f'tiles/{tid}/post.tif'])
  return root


def _predict(root, *flags, env=None, wait=True):
  cmd = [sys.executable, '-m', 'dpfcn_jax.predict', f'--workdir={root / "work"}', *FAST, *flags]
  env = {**{k: v for k, v in os.environ.items() if not k.startswith('SLURM_')}, **(env or {})}
  if not wait:
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
  return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=TIMEOUT_S, check=False)


def _free_port():
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _features(path, layer=None):
  """[(area, bounds)] of a vector file as GDAL reads it, sorted."""
  meta, _, geometry, fields = pyogrio.raw.read(path, layer=layer)
  areas = fields[list(meta['fields']).index('area_m2')]
  bounds = pyogrio.read_bounds(path, layer=layer)[1].T
  return sorted(zip(np.round(areas, 6), map(tuple, np.round(bounds, 6)))), meta


@pytest.fixture(scope='module')
def two_process_batch(mosaic_case):
  """The six tiles mapped by a two-process jax.distributed job, and the uncut scene."""
  out, port = mosaic_case / 'batch', _free_port()
  procs = [_predict(mosaic_case, f'--scenes={mosaic_case / "tiles.csv"}', f'--out={out}',
                    f'--coordinator_address=localhost:{port}', '--num_processes=2',
                    f'--process_id={i}', env={'JAX_NUM_CPU_DEVICES': '1'}, wait=False)
           for i in range(2)]
  logs = []
  try:
    for p in procs:
      stdout, stderr = p.communicate(timeout=TIMEOUT_S)
      logs.append(stdout + stderr)
      assert p.returncode == 0, stderr[-3000:]
  finally:
    for p in procs:
      p.kill()
  uncut = _predict(mosaic_case, f'--pre={mosaic_case / "scene/pre.tif"}',
                   f'--post={mosaic_case / "scene/post.tif"}', f'--out={mosaic_case / "uncut"}')
  assert uncut.returncode == 0, uncut.stderr[-3000:]
  return out, logs


def test_two_processes_map_each_scene_once_and_merge_to_the_uncut_scene(mosaic_case,
                                                                       two_process_batch):
  out, _ = two_process_batch
  writers = [json.loads((out / f't{i}{j}' / output_dir.MARKER).read_text())['pid']
             for i in range(2) for j in range(3)]
  assert len(set(writers)) == 2 and writers.count(writers[0]) == 3  # shared out, 3 each
  merged, meta = _features(out / mosaic.GPKG)
  uncut, _ = _features(mosaic_case / 'uncut' / 'inventory.geojson')
  assert len(merged) == len(uncut) > 10
  for (a, b), (ua, ub) in zip(merged, uncut):
    assert abs(a - ua) <= 0.25 and np.allclose(b, ub, atol=0.5)  # within a pixel
  assert rasterio.crs.CRS.from_user_input(meta['crs']).to_epsg() == 2326
  with open(out / mosaic.CSV, newline='') as f:
    table = list(csv.DictReader(f))
  assert len(table) == len(merged) and all(r['scenes'] for r in table)
  crossing = [r for r in table if ';' in r['scenes']]
  assert crossing  # landslides across tile borders are one feature with both scenes
  summary = json.loads((out / mosaic.SUMMARY).read_text())['landslides']
  assert summary['landslides'] == len(merged)
  assert sum(c['landslides'] for c in summary['by_size_class_m2'].values()) == len(merged)


def test_every_output_opens_in_gdal_with_the_input_georeferencing(mosaic_case,
                                                                  two_process_batch):
  out, _ = two_process_batch
  for tid in (f't{i}{j}' for i in range(2) for j in range(3)):
    with rasterio.open(mosaic_case / 'tiles' / tid / 'pre.tif') as src:
      crs, transform = src.crs, src.transform
    rasters = sorted((out / tid).glob('*.tif'))
    assert [p.name for p in rasters] == ['lim.tif', 'probability.tif']
    for path in rasters:
      with rasterio.open(path) as r:
        assert r.crs == crs and r.transform == transform
      assert cog_validate(path, quiet=True) == (True, [], [])
    info = pyogrio.read_info(out / tid / 'inventory.geojson')
    assert rasterio.crs.CRS.from_user_input(info['crs']) == crs
  with rasterio.open(mosaic_case / 'uncut' / 'lim.tif') as uncut, \
       rasterio.open(out / 'lim.vrt') as vrt:  # the six LIMs as one raster
    assert (vrt.shape, vrt.crs, vrt.transform) == (uncut.shape, uncut.crs, uncut.transform)
    with rasterio.open(out / 't12' / 'lim.tif') as last:  # the last tile lies on top
      window = vrt.read(1)[ROWS[1][0]:, COLS[2][0]:]
      np.testing.assert_array_equal(window, last.read(1))


def test_killed_batch_resumes_with_only_the_missing_scenes(mosaic_case, tmp_path):
  out = tmp_path / 'batch'
  slow = '--mc_samples=8'  # scenes slow enough to be killed between them
  proc = _predict(mosaic_case, f'--scenes={mosaic_case / "tiles.csv"}', f'--out={out}', slow,
                  wait=False)
  deadline = time.time() + TIMEOUT_S
  while sum(batch_predict.status(out, f't0{j}') == 'done' for j in range(3)) < 2:
    assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-3000:]
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.communicate()
  done = {d.name: (d / output_dir.MARKER).stat().st_mtime_ns for d in out.iterdir()
          if batch_predict.status(out, d.name) == 'done'}
  assert 2 <= len(done) < 6
  again = _predict(mosaic_case, f'--scenes={mosaic_case / "tiles.csv"}', f'--out={out}', slow)
  assert again.returncode == 0, again.stderr[-3000:]
  assert f'{len(done)} already done, {6 - len(done)} to map' in again.stderr
  for name, mtime in done.items():  # not mapped again
    assert (out / name / output_dir.MARKER).stat().st_mtime_ns == mtime
  assert '6 done, 0 failed' in again.stdout and (out / mosaic.GPKG).exists()
  assert not [p for p in out.iterdir() if '.partial' in p.name]


def test_a_corrupt_tile_fails_alone_with_its_reason(mosaic_case, tmp_path):
  bad = tmp_path / 'bad_post.tif'
  bad.write_bytes((mosaic_case / 'tiles' / 't11' / 'post.tif').read_bytes()[:300])
  manifest = tmp_path / 'tiles.csv'
  text = (mosaic_case / 'tiles.csv').read_text().replace('tiles/', f'{mosaic_case}/tiles/')
  manifest.write_text(text.replace(f'{mosaic_case}/tiles/t11/post.tif', str(bad)))
  done = _predict(mosaic_case, f'--scenes={manifest}', f'--out={tmp_path / "batch"}')
  assert done.returncode == 2, done.stderr[-3000:]
  row = next(l for l in done.stdout.splitlines() if l.startswith('| t11 |'))
  assert 'failed' in row and str(bad) in row
  assert '5 done, 1 failed' in done.stdout
  assert 'error: 1 of 6 scenes failed: t11' in done.stderr
  assert len(_features(tmp_path / 'batch' / mosaic.GPKG)[0]) > 0  # the others, merged


def test_manifest_errors_name_the_file(tmp_path):
  (tmp_path / 'm.csv').write_text('name,pre\nx,a.tif\n')
  with pytest.raises(InputError, match='m.csv: manifest needs the columns id, pre, post'):
    batch_predict.read_manifest(tmp_path / 'm.csv')
  (tmp_path / 'd.csv').write_text('id,pre,post\na,1.tif,2.tif\na,3.tif,4.tif\n')
  with pytest.raises(InputError, match="scene id 'a' appears twice"):
    batch_predict.read_manifest(tmp_path / 'd.csv')
  (tmp_path / 'b.csv').write_text('id,pre,post\n../up,1.tif,2.tif\n')
  with pytest.raises(InputError, match='b.csv line 2: scene id'):
    batch_predict.read_manifest(tmp_path / 'b.csv')
  with pytest.raises(InputError, match='manifest not found'):
    batch_predict.read_manifest(tmp_path / 'none.csv')
  (tmp_path / 'scenes' / 'a').mkdir(parents=True)
  scenes = batch_predict.read_manifest(tmp_path / 'scenes')
  assert scenes[0].id == 'a' and 'no pre image' in scenes[0].problem
  assert batch_predict.parse_shard('1/3') == (1, 3)
  array = {'SLURM_ARRAY_TASK_ID': '12', 'SLURM_ARRAY_TASK_COUNT': '4',
           'SLURM_ARRAY_TASK_MIN': '10'}
  assert batch_predict.slurm_shard(array) == '2/4' and batch_predict.slurm_shard({}) is None
  with pytest.raises(InputError, match='--shard'):
    batch_predict.parse_shard('3/3')


@pytest.mark.parametrize('source', ['stand-in', 'real'])
def test_lantau_grid_gives_a_geopackage_in_its_crs(source, tmp_path):
  if source == 'real':
    lantau = real_data('lantau-siteA-post-only', 'A', 'post.tif')
  else:
    lantau = tmp_path / 'post.tif'
    fixture_data.write_lantau_like(lantau)
  pre, geo = io.read_array(lantau)
  h, w = pre.shape[:2]
  folder = tmp_path / 'out' / 'A'
  folder.mkdir(parents=True)
  stripes = np.where(np.arange(w)[None] % 40 < 10, 0.9, 0.1).astype(np.float32)
  with scene_outputs.ProbabilityWriter(folder, h, w, geo) as writer:
    writer.write(np.broadcast_to(stripes, (h, w)), np.zeros((h, w), np.float32),
                 np.ones((h, w), bool))
  mosaic.write(str(tmp_path / 'out'), ['A'], load_config('synthetic').infer)
  gpkg = tmp_path / 'out' / mosaic.GPKG
  with rasterio.open(lantau) as src:
    info = pyogrio.read_info(gpkg)
    assert src.crs.to_epsg() is None  # given by parameters
    assert rasterio.crs.CRS.from_user_input(info['crs']) == src.crs
    assert info['features'] == len(range(0, w, 40))
    minx, _, _, maxy = pyogrio.read_bounds(gpkg)[1].T[0]
    assert (minx, maxy) == src.xy(0, 0, offset='ul')
