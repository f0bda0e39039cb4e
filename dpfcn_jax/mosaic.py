"""One inventory over many mapped scenes: tiles of one grid merged, each CRS carried.

Scenes on one pixel grid (same CRS, pixel size and orientation, origins whole
pixels apart: the tiles of an orthophoto mosaic, overlapping or not) are merged
into one probability map before regions are traced, so a landslide across a tile
border is one polygon and overlap is not counted twice. Where tiles overlap, a
pixel takes the value of the tile it lies deepest inside (the mosaic's own outer
border does not count), where that tile's windows saw the most context: with
tiles cut at window-stride offsets and overlapping by a window or more, the
merged map is the map of the uncut scene. Each merged landslide names the tiles
that saw it: those holding valid pixels under its landslide pixels. Scenes on
different grids stay apart; each CRS is its own GeoPackage layer. The merge
streams bands of rows, so memory follows the mosaic's width and its outlines, not
its area.
"""
import csv
import dataclasses
import json
import logging
import os
import struct
import warnings

import numpy as np

from dpfcn_jax import inventory, scene_map
from dpfcn_jax.data import streaming

BAND_ROWS = 256
# Landslide size classes (m2) for the summaries: small slides to large failures.
SIZE_CLASSES = ((0, 100), (100, 1_000), (1_000, 10_000), (10_000, float('inf')))
GPKG, CSV, SUMMARY = 'inventory.gpkg', 'inventory.csv', 'inventory_summary.json'

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Tile:
  id: str
  path: str            # one product of the scene, e.g. OUT/<id>/probability.tif
  geo: object          # io.GeoInfo
  height: int
  width: int
  row0: int = 0        # position in its group's grid
  col0: int = 0


def read_tiles(out, scene_ids, product='probability.tif'):
  tiles = []
  for sid in scene_ids:
    path = os.path.join(out, sid, product)
    with streaming.RowReader(path) as r:
      tiles.append(Tile(sid, path, r.geo, r.shape[0], r.shape[1]))
  return tiles


def _grid_key(tile):
  """Tiles with equal keys lie on one pixel grid; None for a scene without one."""
  geo = tile.geo
  t = geo.transform if geo is not None else None
  if t is None:
    return None
  inv = np.linalg.inv(t)
  phase = tuple(np.round((inv @ np.array([0.0, 0.0, 1.0]))[:2] % 1.0, 6) % 1.0)
  return (geo.crs_wkt or '', *np.round(t[:2, :2].ravel(), 9), *phase)


def group_tiles(tiles):
  """Tiles grouped by grid, each with its (row0, col0) in the group; unreferenced apart."""
  groups, loose = {}, []
  for t in tiles:
    key = _grid_key(t)
    (loose if key is None else groups.setdefault(key, [])).append(t)
  out = []
  for members in groups.values():
    inv = np.linalg.inv(members[0].geo.transform)
    for t in members:
      col, row = (inv @ t.geo.transform @ np.array([0.0, 0.0, 1.0]))[:2]
      t.row0, t.col0 = int(round(row)), int(round(col))
    r_min, c_min = min(t.row0 for t in members), min(t.col0 for t in members)
    for t in members:
      t.row0, t.col0 = t.row0 - r_min, t.col0 - c_min
    out.append(members)
  return out, loose


def _depth(t, rows, height, width):
  """Pixels of tile `t` on global `rows`: distance to the nearest tile border inside the
  mosaic (borders on the mosaic's edge are no border: the uncut scene has them too)."""
  big = np.iinfo(np.int32).max
  r = rows[:, None]
  c = np.arange(t.col0, t.col0 + t.width)[None, :]
  top = r - t.row0 if t.row0 > 0 else big
  bottom = t.row0 + t.height - 1 - r if t.row0 + t.height < height else big
  left = c - t.col0 if t.col0 > 0 else big
  right = t.col0 + t.width - 1 - c if t.col0 + t.width < width else big
  return np.minimum(np.minimum(top, bottom), np.minimum(left, right)).astype(np.int64)


@dataclasses.dataclass
class Hits:
  """First pixels of the runs of landslide pixels of the merged map that a tile holds
  valid data under (a run lies in one region, so its first pixel says which)."""
  tile: np.ndarray     # index of the tile in its group
  row: np.ndarray
  col: np.ndarray


def merged_runs(tiles):
  """(runs of landslide pixels with statistics, height, width, and `Hits`) of a group's
  merged map."""
  height = max(t.row0 + t.height for t in tiles)
  width = max(t.col0 + t.width for t in tiles)
  collector, hits = inventory.RunCollector(), []
  readers = {}
  try:
    for r0 in range(0, height, BAND_ROWS):
      r1 = min(height, r0 + BAND_ROWS)
      best = np.full((r1 - r0, width), -1, np.int64)
      prob = np.zeros((r1 - r0, width), np.float32)
      seen = []  # (tile index, its view of the band, its valid pixels there)
      for i, t in enumerate(tiles):
        a0, a1 = max(r0, t.row0), min(r1, t.row0 + t.height)
        if a0 >= a1:
          if t.id in readers and r0 >= t.row0 + t.height:
            readers.pop(t.id).close()  # bands go down: this tile is done
          continue
        if t.id not in readers:
          readers[t.id] = streaming.RowReader(t.path)
        p = readers[t.id].rows(a0 - t.row0, a1 - t.row0)[..., 0]
        valid = (p >= 0) & (p <= 1)  # nodata is NaN or a value outside [0, 1]
        depth = np.where(valid, _depth(t, np.arange(a0, a1), height, width), -1)
        view = np.s_[a0 - r0:a1 - r0, t.col0:t.col0 + t.width]
        take = depth > best[view]
        best[view] = np.where(take, depth, best[view])
        prob[view] = np.where(take, p, prob[view])
        seen.append((i, view, valid))
      landslide = scene_map.SceneMapper.lim(prob) & (best >= 0)
      collector.add(r0, landslide, prob, np.zeros_like(prob))
      for i, view, valid in seen:
        row, start, _ = inventory.find_runs(landslide[view] & valid, r0 + view[0].start)
        hits.append((np.full(len(row), i), row, start + view[1].start))
  finally:
    for r in readers.values():
      r.close()
  return collector.runs(), height, width, Hits(*(np.concatenate(c) for c in zip(*hits)))


def scenes_of(inv, hits, tiles, width, connectivity):
  """Per region of `inv`, the ids of the tiles that hold valid pixels under its
  landslide pixels (in the tiles' order), joined by ';'."""
  if not inv.regions:
    return []
  mapped = inv.mapped
  # The kept regions are the components of their own pixels, in the same raster order.
  region = inventory.label_runs(mapped, width, connectivity)
  span = width + 1
  at = np.searchsorted(mapped.row * span + mapped.start, hits.row * span + hits.col,
                       'right') - 1
  # A hit in no mapped run is of a region below the mapping unit.
  inside, ok = np.zeros(len(at), bool), at >= 0
  inside[ok] = (mapped.row[at[ok]] == hits.row[ok]) & (mapped.end[at[ok]] > hits.col[ok])
  pairs = np.unique(np.stack([region[at[inside]], hits.tile[inside]], 1), axis=0)
  ids = [[] for _ in inv.regions]
  for r, t in pairs:
    ids[r].append(tiles[t].id)
  return [';'.join(i) for i in ids]


def _wkb(geometry):
  """Little-endian WKB of a GeoJSON Polygon or MultiPolygon, as a MultiPolygon."""
  polys = ([geometry['coordinates']] if geometry['type'] == 'Polygon'
           else geometry['coordinates'])
  out = [struct.pack('<BII', 1, 6, len(polys))]
  for rings in polys:
    out.append(struct.pack('<BII', 1, 3, len(rings)))
    for ring in rings:
      out.append(struct.pack('<I', len(ring)) + np.asarray(ring, '<f8').tobytes())
  return b''.join(out)


def size_class(area):
  for lo, hi in SIZE_CLASSES:
    if lo <= area < hi:
      return f'{lo:g}-{hi:g}' if hi != float('inf') else f'>={lo:g}'
  return ''


def group_features(tiles, infer):
  """(features with scene ids and size class, CRS WKT) of one group's merged inventory."""
  runs, height, width, hits = merged_runs(tiles)
  geo = tiles[0].geo.window(-tiles[0].row0, -tiles[0].col0)  # the group's origin
  inv = inventory.build(runs, width, height, infer.connectivity, infer.fill_holes,
                        infer.min_area_m2 / geo.pixel_area)
  features = list(inventory.features(inv, geo))
  for f, scenes in zip(features, scenes_of(inv, hits, tiles, width, infer.connectivity)):
    f['properties']['scenes'] = scenes
    f['properties']['size_class'] = size_class(f['properties']['area_m2'])
  return features, geo.crs_wkt or ''


def write(out, scene_ids, infer):
  """Writes OUT/inventory.gpkg (one layer per CRS), inventory.csv and the summary JSON
  over the mapped scenes; returns the summary."""
  import pyogrio  # pylint: disable=g-import-not-at-top
  groups, loose = group_tiles(read_tiles(out, scene_ids))
  if loose:
    log.warning('%d scenes have no georeferencing and stay out of the merged inventory: %s',
                len(loose), ', '.join(t.id for t in loose))
  layers = {}
  for tiles in groups:
    features, wkt = group_features(tiles, infer)
    layers.setdefault(wkt, []).extend(features)
  names = {wkt: 'landslides' if len(layers) == 1 else f'landslides_{i}'
           for i, wkt in enumerate(layers, 1)}
  columns = inventory.columns(True) + ['scenes', 'size_class']  # map units, no MC std
  gpkg_tmp, csv_tmp = (os.path.join(out, f'.partial-{n}') for n in (GPKG, CSV))
  if os.path.exists(gpkg_tmp):
    os.unlink(gpkg_tmp)  # ours, left by a killed merge
  with open(csv_tmp, 'w', newline='') as f:
    rows = csv.DictWriter(f, ['layer'] + columns)
    rows.writeheader()
    for wkt, features in layers.items():
      for i, feat in enumerate(features, 1):
        feat['properties']['id'] = i
        rows.writerow({'layer': names[wkt], **{c: feat['properties'][c] for c in columns}})
      if features:
        with warnings.catch_warnings():  # a grid without a CRS is written as it is
          warnings.filterwarnings('ignore', "'crs' was not provided")
          pyogrio.raw.write(gpkg_tmp, np.array([_wkb(f['geometry']) for f in features], object),
                            [np.array([f['properties'][c] for f in features]) for c in columns],
                            columns, layer=names[wkt], driver='GPKG',
                            geometry_type='MultiPolygon', crs=wkt or None,
                            append=os.path.exists(gpkg_tmp))
  summary = summarise(layers, names)
  if os.path.exists(gpkg_tmp):
    os.replace(gpkg_tmp, os.path.join(out, GPKG))
  os.replace(csv_tmp, os.path.join(out, CSV))
  with open(os.path.join(out, SUMMARY), 'w') as f:
    json.dump(summary, f, indent=2)
  return summary


def summarise(layers, names):
  """Count and area (m2) of the merged landslides, in all and by size class, per layer."""
  out = {}
  for wkt, features in layers.items():
    areas = np.array([f['properties']['area_m2'] for f in features], np.float64)
    out[names[wkt]] = {
        'landslides': len(features), 'area_m2': float(areas.sum()),
        'by_size_class_m2': {size_class(lo): {'landslides': int(((areas >= lo) & (areas < hi)).sum()),
                                              'area_m2': float(areas[(areas >= lo) & (areas < hi)].sum())}
                             for lo, hi in SIZE_CLASSES}}
  return out
