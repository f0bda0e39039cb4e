"""inventory_figure: the tiles it cuts form a batch manifest; the picture draws each
tile's outline and the merged landslides, in their colours, where GDAL puts them."""
import numpy as np
import pytest

from conftest import load_config
from dpfcn_jax import batch_predict, inventory_figure as fig, mosaic, scene_outputs
from dpfcn_jax.data import streaming, synthetic

pytest.importorskip('pyogrio', reason='GDAL checks need the test extras')


def test_cut_tiles_and_draw_the_merged_inventory(tmp_path):
  scene = synthetic.generate_scene(1, fig.HEIGHT, fig.WIDTH)
  scenes = batch_predict.read_manifest(fig.cut_mosaic(str(tmp_path), scene))
  ids = [s.id for s in scenes]
  assert len(ids) == 6
  with streaming.RowReader(scenes[4].post) as r:  # t11 starts at row 192, column 192
    np.testing.assert_array_equal(r.rows(0, 1)[0], scene['post'][192, 192:512])
    assert r.geo == fig.GEO.window(192, 192)
  prob = np.zeros((fig.HEIGHT, fig.WIDTH), np.float32)
  prob[50:80, 150:250] = 0.9   # across t00 and t01
  prob[340:370, 520:560] = 0.9  # in t12 alone
  batch = tmp_path / 'batch'
  for sid, (r0, r1), (c0, c1) in ((f't{i}{j}', fig.ROWS[i], fig.COLS[j])
                                  for i in range(2) for j in range(3)):
    (batch / sid).mkdir(parents=True)
    tile, valid = prob[r0:r1, c0:c1], np.ones((r1 - r0, c1 - c0), bool)
    geo = fig.GEO.window(r0, c0)
    with scene_outputs.ProbabilityWriter(batch / sid, r1 - r0, c1 - c0, geo) as writer:
      writer.write(tile, np.zeros_like(tile), valid)
    with scene_outputs.LimWriter(batch / sid, r1 - r0, c1 - c0, geo) as writer:
      writer.write(tile > 0.5, valid)
  mosaic.write(str(batch), ids, load_config('synthetic').infer)
  image = fig.render(scene['post'], fig.GEO, str(batch), ids)
  assert image.size == (fig.WIDTH, fig.HEIGHT) and image.mode == 'P'
  rgb = np.asarray(image.convert('RGB'))
  assert (rgb[50:81, 150] == fig.ACROSS_RGB).all()  # the left edge of the landslide
  assert (rgb[340:371, 560] == fig.ONE_RGB).all()
  assert (rgb[100:190, 320] == fig.TILE_RGB[0]).all()  # t00's right edge
  assert (rgb[330:400, 192] == fig.TILE_RGB[4]).all()  # t11's left edge, below t00
