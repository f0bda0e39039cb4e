"""The README's picture of a merged inventory, drawn from a real batch run.

python -m dpfcn_jax.inventory_figure --workdir=W --out=docs/inventory.png [--overwrite]
    [--scratch=DIR]

Cuts one synthetic scene into 2 x 3 overlapping GeoTIFF tiles, maps them with the
batch command (`python -m dpfcn_jax.predict --scenes`, in a fresh process) and
draws the post image with each tile's outline (from its lim.tif, a colour per
tile) and the merged landslides read back from inventory.gpkg through GDAL:
magenta, or cyan where one landslide spans several tiles. An existing --out is
replaced only with --overwrite.
"""
import contextlib
import csv
import os
import struct
import subprocess
import sys
import tempfile

from absl import app, flags
import numpy as np
from PIL import Image, ImageDraw
import tifffile

from dpfcn_jax import cli, mosaic, output_dir
from dpfcn_jax.data import io, synthetic
from dpfcn_jax.errors import OutputError

SEED = 500_000        # outside the train/val/test seed ranges of configs/default.py
HEIGHT, WIDTH = 400, 600
# Tiles cut at multiples of the demo's 96 px window stride, overlapping by its 128 px
# window, so that the merge equals the uncut scene's map (mosaic.py).
ROWS, COLS = ((0, 320), (192, 400)), ((0, 320), (192, 512), (384, 600))
GEO = io.GeoInfo(((io.TAG_PIXEL_SCALE, 12, 3, (0.5, 0.5, 0.0)),
                  (io.TAG_TIEPOINT, 12, 6, (0.0, 0.0, 0.0, 800000.0, 820000.0, 0.0)),
                  (io.TAG_GEOKEYS, 3, 8, (1, 1, 0, 1, 3072, 0, 1, 2326))))  # HK 1980 Grid
# One colour per tile (row by row), so that overlapping outlines stay apart.
TILE_RGB = ((255, 230, 0), (255, 140, 0), (255, 255, 255),
            (255, 60, 60), (120, 255, 80), (60, 90, 255))
ONE_RGB, ACROSS_RGB, LABEL_EDGE_RGB = (255, 0, 255), (0, 255, 255), (0, 0, 0)
COLOURS = 48  # palette PNG, the lines' colours included: under 150 KB

_WORKDIR = flags.DEFINE_string('workdir', None, 'Trained model (e.g. the synthetic demo).')
_OUT = flags.DEFINE_string('out', None, 'The PNG to write.')
_OVERWRITE = flags.DEFINE_boolean('overwrite', False, 'Replace an existing --out file.')
_SCRATCH = flags.DEFINE_string('scratch', None, 'Where tiles and the batch go, kept: a new or '
                               'empty folder, or one of an earlier run, whose mapped scenes '
                               'are kept (default: a temporary folder, removed at the end).')
flags.mark_flags_as_required(['workdir', 'out'])


def cut_mosaic(folder, scene):
  """FOLDER/tiles/<id>/{pre,post}.tif of the ROWS x COLS tiles and FOLDER/tiles.csv."""
  manifest = os.path.join(folder, 'tiles.csv')
  with open(manifest, 'w', newline='') as f:
    rows = csv.writer(f)
    rows.writerow(['id', 'pre', 'post'])
    for i, (r0, r1) in enumerate(ROWS):
      for j, (c0, c1) in enumerate(COLS):
        tid = f't{i}{j}'
        os.makedirs(os.path.join(folder, 'tiles', tid), exist_ok=True)
        for k in ('pre', 'post'):
          tifffile.imwrite(os.path.join(folder, 'tiles', tid, f'{k}.tif'),
                           scene[k][r0:r1, c0:c1], photometric='rgb',
                           extratags=io.geotiff_extratags(GEO.window(r0, c0)))
        rows.writerow([tid, f'tiles/{tid}/pre.tif', f'tiles/{tid}/post.tif'])
  return manifest


def _rings(wkb):
  """The rings of a little-endian WKB MultiPolygon, as mosaic writes them."""
  if wkb[0] != 1 or struct.unpack_from('<I', wkb, 1)[0] != 6:
    raise ValueError('not a little-endian WKB MultiPolygon')
  rings, at = [], 9
  for _ in range(struct.unpack_from('<I', wkb, 5)[0]):
    count, at = struct.unpack_from('<I', wkb, at + 5)[0], at + 9
    for _ in range(count):
      n, at = struct.unpack_from('<I', wkb, at)[0], at + 4
      rings.append(np.frombuffer(wkb, '<f8', 2 * n, at).reshape(n, 2))
      at += 16 * n
  return rings


def render(post, geo, batch, scene_ids):
  """`post` (uint8 RGB on `geo`'s grid) with the scenes' outlines and the merged
  landslides of the batch folder `batch`, as a palette image."""
  import pyogrio  # pylint: disable=g-import-not-at-top
  to_pixel = np.linalg.inv(geo.transform)

  def pixels(xy):
    return [tuple(p) for p in (to_pixel @ np.c_[xy, np.ones(len(xy))].T)[:2].T]

  lines = (*TILE_RGB, ONE_RGB, ACROSS_RGB, LABEL_EDGE_RGB)
  image = Image.fromarray(post).quantize(COLOURS - len(lines))
  photo = (image.getpalette() + [0] * 3 * COLOURS)[:3 * (COLOURS - len(lines))]
  image.putpalette(photo + [v for rgb in lines for v in rgb])
  *tile_ink, one_ink, across_ink, edge_ink = range(COLOURS - len(lines), COLOURS)
  draw = ImageDraw.Draw(image)
  for k, tile in enumerate(mosaic.read_tiles(batch, scene_ids, 'lim.tif')):
    x, y = tile.geo.pixel_to_map([0, 0, tile.height, tile.height], [0, tile.width, tile.width, 0])
    corners = pixels(np.c_[x, y])
    ink = tile_ink[k % len(tile_ink)]
    draw.line(corners + corners[:1], fill=ink, width=2)
    draw.text((corners[0][0] + 5, corners[0][1] + 3), tile.id, fill=ink, stroke_width=2,
              stroke_fill=edge_ink)
  meta, _, geometry, fields = pyogrio.raw.read(os.path.join(batch, mosaic.GPKG))
  scenes = fields[list(meta['fields']).index('scenes')]
  for wkb, names in zip(geometry, scenes):
    for ring in _rings(wkb):
      draw.line(pixels(ring), fill=across_ink if ';' in names else one_ink, width=1)
  return image


def make(workdir, out, scratch):
  """Cuts, maps (the batch command) and draws into `out`."""
  scene = synthetic.generate_scene(SEED, HEIGHT, WIDTH)
  manifest = cut_mosaic(scratch, scene)
  batch = os.path.join(scratch, 'batch')
  cmd = [sys.executable, '-m', 'dpfcn_jax.predict', f'--workdir={workdir}',
         f'--scenes={manifest}', f'--out={batch}']
  done = subprocess.run(cmd, capture_output=True, text=True, check=False)
  if done.returncode != 0:
    raise RuntimeError(f'{" ".join(cmd)} failed:\n{done.stderr[-3000:]}')
  ids = [f't{i}{j}' for i in range(len(ROWS)) for j in range(len(COLS))]
  tmp = f'{out}.partial.png'
  render(scene['post'], GEO, batch, ids).save(tmp, optimize=True)
  os.replace(tmp, out)


def main(argv):
  del argv
  with cli.user_errors(), contextlib.ExitStack() as stack:
    out = _OUT.value
    if os.path.lexists(out) and not _OVERWRITE.value:
      raise OutputError(f'{out}: exists; pass --overwrite to replace it')
    if _SCRATCH.value:
      scratch = str(output_dir.claim(_SCRATCH.value, 'inventory_figure'))
    else:
      scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix='inventory_figure-'))
    make(_WORKDIR.value, out, scratch)
    print(f'{out}: {os.path.getsize(out) / 1024:.0f} KiB', flush=True)


if __name__ == '__main__':
  app.run(main)
