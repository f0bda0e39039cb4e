"""mosaic: each merged landslide names exactly the tiles that hold valid pixels under it."""
import csv

import numpy as np
import pytest

from conftest import load_config
from dpfcn_jax import inventory, mosaic, scene_outputs
from dpfcn_jax.data import io

GEO = io.GeoInfo(((io.TAG_PIXEL_SCALE, 12, 3, (0.5, 0.5, 0.0)),
                  (io.TAG_TIEPOINT, 12, 6, (0.0, 0.0, 0.0, 800000.0, 820000.0, 0.0)),
                  (io.TAG_GEOKEYS, 3, 8, (1, 1, 0, 1, 3072, 0, 1, 2326))))
# A 2 x 2 mosaic of 40 px tiles, and tile n over t11's footprint, nodata under its blob.
TILES = {'t00': (0, 0), 't01': (0, 40), 't10': (40, 0), 't11': (40, 40), 'n': (40, 40)}


def write_mosaic(out, prob, nodata_in=None):
  """Writes OUT/<id>/probability.tif of every tile cut from `prob`; `nodata_in` maps an
  id to a mask of pixels (of the whole mosaic) that tile holds as nodata."""
  for tid, (r0, c0) in TILES.items():
    tile = prob[r0:r0 + 40, c0:c0 + 40].copy()
    if tid in (nodata_in or {}):
      tile[nodata_in[tid][r0:r0 + 40, c0:c0 + 40]] = np.nan
    (out / tid).mkdir(parents=True)
    with scene_outputs.ProbabilityWriter(out / tid, 40, 40, GEO.window(r0, c0)) as writer:
      writer.write(tile, np.zeros_like(tile), np.isfinite(tile))


@pytest.fixture
def infer():
  c = load_config('synthetic').infer
  c.min_area_m2 = 1.0  # 4 pixels of 0.25 m2
  return c


def test_merged_features_list_the_tiles_under_their_pixels(tmp_path, infer):
  prob = np.zeros((80, 80), np.float32)
  prob[30:50, 30:35] = prob[30:35, 30:50] = 0.9  # an L over t00, t01, t10; its box meets t11
  blob = np.zeros((80, 80), bool)
  blob[60:65, 60:65] = True                      # in t11; n holds nodata there
  prob[blob] = 0.9
  prob[10, 10] = 0.9                             # one pixel: below the mapping unit
  write_mosaic(tmp_path, prob, {'n': blob})
  summary = mosaic.write(str(tmp_path), list(TILES), infer)
  with open(tmp_path / mosaic.CSV, newline='') as f:
    rows = list(csv.DictReader(f))
  assert [r['scenes'] for r in rows] == ['t00;t01;t10', 't11']
  assert [float(r['area_m2']) for r in rows] == [(20 * 5 + 5 * 15) * 0.25, 25 * 0.25]
  assert summary['landslides']['landslides'] == 2


@pytest.mark.parametrize('connectivity,fill_holes', [(4, False), (4, True), (8, False), (8, True)])
def test_regions_are_the_components_of_their_mapped_pixels(connectivity, fill_holes):
  """What scenes_of relies on to find a pixel's region."""
  rng = np.random.default_rng(connectivity + fill_holes)
  for _ in range(15):
    m = rng.random((30, 40)) > 0.65
    runs = inventory.RunCollector()
    runs.add(0, m, m.astype(np.float32), np.zeros(m.shape))
    inv = inventory.build(runs.runs(), 40, 30, connectivity, fill_holes, min_pixels=3)
    label = inventory.label_runs(inv.mapped, 40, connectivity)
    pixels = np.bincount(label, inv.mapped.end - inv.mapped.start)
    assert pixels.tolist() == [r.pixels for r in inv.regions]
