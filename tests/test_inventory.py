"""Landslide regions from band-wise runs: labelling, exact polygons, holes, GeoJSON/CSV."""
import csv
import json

import numpy as np
import pytest
import tifffile
from scipy import ndimage

import fixture_data
from dpfcn_jax import inventory
from dpfcn_jax.data import io

STRUCTURE = {4: ndimage.generate_binary_structure(2, 1), 8: ndimage.generate_binary_structure(2, 2)}
# North-up 0.5 m grid, Hong Kong 1980 Grid origin of the Lantau site A GeoTIFF.
GEO = io.GeoInfo(((33550, 12, 3, (0.5, 0.5, 0.0)),
                  (33922, 12, 6, (0.0, 0.0, 0.0, 803288.5, 811038.5, 0.0))))

def _collect(mask, prob, rng):
  """Feeds `mask` in bands of random heights, as the predict loop does."""
  col, r = inventory.RunCollector(), 0
  while r < len(mask):
    k = int(rng.integers(1, 6))
    col.add(r, mask[r:r + k], prob[r:r + k], prob[r:r + k] / 2)
    r += k
  return col.runs()


def _rasterise(polygons, h, w):
  """Pixels whose centres the rings enclose (even-odd over every ring)."""
  yy, xx = np.mgrid[0:h, 0:w] + 0.5
  count = np.zeros((h, w), int)
  for ring in (r for poly in polygons for r in poly):
    for (x1, y1), (x2, y2) in zip(ring[:-1], ring[1:]):
      if y1 != y2:
        count += (yy > min(y1, y2)) & (yy < max(y1, y2)) & (xx < x1)
  return count % 2 == 1


def _shoelace(ring):
  x, y = ring[:, 0], ring[:, 1]
  return 0.5 * np.sum(x[:-1] * y[1:] - x[1:] * y[:-1])


def _scenes(n, seed=0):
  rng = np.random.default_rng(seed)
  for _ in range(n):
    h, w = rng.integers(5, 40, 2)
    yield rng.random((h, w)) < rng.uniform(0.2, 0.7), rng.random((h, w)).astype(np.float32), rng


@pytest.mark.parametrize('connectivity', [4, 8])
@pytest.mark.parametrize('chunk', [5, inventory.TRACE_CHUNK_RUNS])
def test_regions_are_the_connected_components_with_exact_polygons(connectivity, chunk,
                                                                  monkeypatch):
  monkeypatch.setattr(inventory, 'TRACE_CHUNK_RUNS', chunk)  # regions traced in groups
  for mask, prob, rng in _scenes(25):
    h, w = mask.shape
    labels, n = ndimage.label(mask, STRUCTURE[connectivity])
    inv = inventory.build(_collect(mask, prob, rng), w, h, connectivity)
    assert len(inv.regions) == n  # raster order, like ndimage.label
    for i, region in enumerate(inv.regions, 1):
      comp = labels == i
      np.testing.assert_array_equal(_rasterise(region.polygons, h, w), comp)
      area = sum(_shoelace(r) for poly in region.polygons for r in poly)
      assert area == region.pixels == comp.sum()
      assert region.prob_sum == pytest.approx(prob[comp].sum(), rel=1e-5)
      assert region.prob_max == prob[comp].max()
      ys, xs = np.nonzero(comp)
      np.testing.assert_allclose(region.centroid, (xs.mean() + 0.5, ys.mean() + 0.5))
      for ring in (r for poly in region.polygons for r in poly):
        corners = {tuple(p) for p in ring[:-1]}
        assert len(corners) == len(ring) - 1  # simple rings: no vertex twice
      if connectivity == 4:
        assert len(region.polygons) == 1
    np.testing.assert_array_equal(inventory.rows_mask(inv.mapped, 0, h, w), mask)


@pytest.mark.parametrize('connectivity', [4, 8])
def test_fill_holes_absorbs_holes_and_regions_inside_them(connectivity, monkeypatch):
  monkeypatch.setattr(inventory, 'TRACE_CHUNK_RUNS', 5)
  for mask, prob, rng in _scenes(25, seed=1):
    h, w = mask.shape
    labels, n = ndimage.label(mask, STRUCTURE[connectivity])
    filled = np.zeros_like(mask)
    for i in range(1, n + 1):  # a hole: background the region's outline encloses
      filled |= ndimage.binary_fill_holes(labels == i)
    labels2, n2 = ndimage.label(filled, STRUCTURE[connectivity])
    inv = inventory.build(_collect(mask, prob, rng), w, h, connectivity, fill_holes=True)
    np.testing.assert_array_equal(inventory.rows_mask(inv.mapped, 0, h, w), filled)
    assert len(inv.regions) == n2
    for i, region in enumerate(inv.regions, 1):
      comp = labels2 == i
      np.testing.assert_array_equal(_rasterise(region.polygons, h, w), comp)
      assert region.pixels == comp.sum()
      assert region.detected == (comp & mask).sum()
      assert region.prob_max == prob[comp & mask].max()


def test_minimum_mapping_unit_drops_small_regions():
  mask = np.zeros((12, 12), bool)
  mask[1:3, 1:3] = True      # 4 px
  mask[5:10, 5:10] = True    # 25 px
  mask[7, 7] = False         # hole: 24 px, 25 filled
  prob = np.full(mask.shape, 0.9, np.float32)
  runs = _collect(mask, prob, np.random.default_rng(0))
  assert [r.pixels for r in inventory.build(runs, 12, 12, min_pixels=5).regions] == [24]
  assert [r.pixels for r in inventory.build(runs, 12, 12, min_pixels=25).regions] == []
  filled = inventory.build(runs, 12, 12, fill_holes=True, min_pixels=25)
  assert [r.pixels for r in filled.regions] == [25]
  assert inventory.rows_mask(filled.mapped, 0, 12, 12).sum() == 25


def test_corner_touching_pixels_split_under_4_and_join_under_8_connectivity():
  mask = np.eye(3, dtype=bool)
  runs = _collect(mask, mask.astype(np.float32), np.random.default_rng(0))
  assert len(inventory.build(runs, 3, 3, 4).regions) == 3
  (joined,) = inventory.build(runs, 3, 3, 8).regions
  assert joined.pixels == 3 and len(joined.polygons) == 3  # a MultiPolygon of three squares


def test_geojson_and_csv_in_map_coordinates(tmp_path):
  mask = np.zeros((20, 30), bool)
  mask[2:12, 3:15] = True
  mask[5:8, 6:9] = False
  mask[15:18, 20:29] = True
  prob = np.where(mask, 0.8, 0.1).astype(np.float32)
  inv = inventory.build(_collect(mask, prob, np.random.default_rng(0)), 30, 20)
  found, area = inventory.write(inv, GEO, tmp_path / 'i.geojson', tmp_path / 'i.csv',
                                uncertainty=True)
  collection = json.loads((tmp_path / 'i.geojson').read_text())
  with open(tmp_path / 'i.csv', newline='') as f:
    table = list(csv.DictReader(f))
  assert len(collection['features']) == len(table) == found == 2
  assert area == mask.sum() * 0.25
  assert 'crs' not in collection and 'note' in collection  # no GeoKeys at all
  for feature, row in zip(collection['features'], table):
    props = feature['properties']
    assert {k: str(v) for k, v in props.items()} == row
    shell, *holes = [np.asarray(r) for r in feature['geometry']['coordinates']]
    assert _shoelace(shell) > 0 and all(_shoelace(h) < 0 for h in holes)  # RFC 7946 winding
    area = sum(_shoelace(r) for r in [shell] + holes)
    assert area == props['area_m2'] == props['pixels'] * 0.25
    assert props['mean_probability'] == pytest.approx(0.8)
    assert props['mean_uncertainty'] == pytest.approx(0.4)
    assert np.all((shell[:, 0] >= 803288.5) & (shell[:, 0] <= 803288.5 + 15))
    assert np.all((shell[:, 1] <= 811038.5) & (shell[:, 1] >= 811038.5 - 10))
  first = collection['features'][0]['properties']
  assert first['pixels'] == 120 - 9 and first['perimeter_m'] == 0.5 * (2 * (10 + 12) + 4 * 3)
  assert (first['centroid_x'], first['centroid_y']) == pytest.approx((803288.5 + 4.5,
                                                                      811038.5 - 3.5), abs=0.1)


def test_pixel_coordinates_and_epsg_crs(tmp_path):
  mask = np.zeros((4, 4), bool)
  mask[1:3, 1:3] = True
  inv = inventory.build(_collect(mask, mask * 1.0, np.random.default_rng(0)), 4, 4)
  inventory.write(inv, None, tmp_path / 'p.geojson', tmp_path / 'p.csv')
  collection = json.loads((tmp_path / 'p.geojson').read_text())
  assert 'pixel coordinates' in collection['note']
  props = collection['features'][0]['properties']
  assert props['area_px2'] == 4 and props['perimeter_px'] == 8
  keys = (1, 1, 0, 1, 3072, 0, 1, 2326)  # ProjectedCSTypeGeoKey = EPSG:2326
  geo = io.GeoInfo(GEO.tags + ((34735, 3, len(keys), keys),))
  assert inventory.epsg_code(geo) == 2326
  inventory.write(inv, geo, tmp_path / 'e.geojson', tmp_path / 'e.csv')
  crs = json.loads((tmp_path / 'e.geojson').read_text())['crs']
  assert crs['properties']['name'] == 'urn:ogc:def:crs:EPSG::2326'


def test_gdal_reads_the_crs_of_a_grid_given_by_parameters(tmp_path):
  pyogrio = pytest.importorskip('pyogrio', reason='GDAL check needs the test extras')
  rasterio = pytest.importorskip('rasterio')
  geo = io.GeoInfo(tuple(t for t in fixture_data.HK1980_TAGS if t[0] != io.TAG_NODATA))
  assert inventory.epsg_code(geo) is None
  mask = np.zeros((6, 6), bool)
  mask[1:3, 1:4] = mask[4:, 4:] = True
  inv = inventory.build(_collect(mask, mask * 1.0, np.random.default_rng(0)), 6, 6)
  inventory.write(inv, geo, tmp_path / 'i.geojson', tmp_path / 'i.csv')
  tifffile.imwrite(tmp_path / 'grid.tif', mask.astype(np.uint8),
                   extratags=io.geotiff_extratags(geo))
  info = pyogrio.read_info(tmp_path / 'i.geojson')
  with rasterio.open(tmp_path / 'grid.tif') as grid:
    assert grid.crs is not None and grid.crs.to_epsg() is None
    # Without a CRS member GDAL reads the coordinates as EPSG:4326 degrees.
    assert rasterio.crs.CRS.from_user_input(info['crs']) == grid.crs
    minx, miny, maxx, maxy = pyogrio.read_bounds(tmp_path / 'i.geojson')[1].T[0]
    assert (minx, maxy) == grid.xy(1, 1, offset='ul')  # the first region's corner
  assert info['features'] == 2


def test_empty_map_writes_empty_inventory(tmp_path):
  inv = inventory.build(inventory.RunCollector().runs(), 5, 5)
  assert inv.regions == [] and not inventory.rows_mask(inv.mapped, 0, 5, 5).any()
  inventory.write(inv, GEO, tmp_path / 'x.geojson', tmp_path / 'x.csv')
  assert json.loads((tmp_path / 'x.geojson').read_text())['features'] == []
  assert (tmp_path / 'x.csv').read_text().startswith('id,area_m2,perimeter_m')
