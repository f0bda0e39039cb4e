"""Landslide inventory: the connected regions of the landslide map as exact polygons.

The binary map arrives band by band (`RunCollector.add`) and is kept as
horizontal runs of landslide pixels with their probability sums, so memory
follows the length of the outlines, not the area of the scene. Regions are the
connected components of the runs, joined across bands with a sparse graph
(scipy.sparse.csgraph; scipy.ndimage.label would need the whole map in memory,
and gives the same partition). 4-connectivity is the default: pixels that touch
only at a corner are separate landslides, and every region is one polygon.
Outlines follow pixel edges exactly (outer ring plus holes; a hole may touch its
shell at one corner, as the OGC simple-feature rules allow), so a polygon's area
is its pixel count times the pixel area. Options: hole filling (a region's holes,
and any region inside them, become part of it) and a minimum mapping unit.
"""
import csv
import dataclasses
import json
from typing import Optional

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from dpfcn_jax.errors import ConfigError

CONNECTIVITIES = (4, 8)
# Edge headings, clockwise on the image (rows grow down): E, S, W, N as (dx, dy).
_STEP = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]])
_E, _S, _W, _N = range(4)
_USER_DEFINED = 32767  # GeoTIFF code for a CRS given by parameters rather than EPSG
_CRS_KEYS = (3072, 2048)  # ProjectedCSTypeGeoKey, GeographicTypeGeoKey
# Regions are traced in groups of about this many runs: the tracing temporaries
# (~500 bytes a run) stay near 100 MiB however many landslides a scene holds.
TRACE_CHUNK_RUNS = 200_000


@dataclasses.dataclass
class Runs:
  """Maximal horizontal runs [start, end) of pixels on `row`, sorted by row then start."""
  row: np.ndarray
  start: np.ndarray
  end: np.ndarray
  prob_sum: Optional[np.ndarray] = None  # per run, over its pixels
  prob_max: Optional[np.ndarray] = None
  std_sum: Optional[np.ndarray] = None

  def __len__(self):
    return len(self.row)


def find_runs(mask, row0=0):
  """(row, start, end) of the True runs of every row of a 2-D band starting at `row0`."""
  h, w = mask.shape
  edges = np.zeros((h, w + 2), np.int8)
  edges[:, 1:-1] = mask
  d = np.diff(edges, axis=1)
  rows, start = np.nonzero(d == 1)
  _, end = np.nonzero(d == -1)
  return rows.astype(np.int64) + row0, start.astype(np.int64), end.astype(np.int64)


class RunCollector:
  """Accumulates the runs of a binary map given band by band, top to bottom."""

  def __init__(self):
    self._parts = []

  def add(self, row0, mask, prob=None, std=None):
    """Adds rows [row0, row0 + len(mask)); `prob`/`std` (same shape) give run statistics."""
    row, start, end = find_runs(np.asarray(mask, bool), row0)
    part = [row, start, end]
    if prob is not None:
      w = mask.shape[1]
      at = np.stack([(row - row0) * w + start, (row - row0) * w + end], 1).ravel()

      def per_run(op, values, dtype):
        flat = np.append(np.asarray(values, dtype).ravel(), 0)  # an `end` may be h * w
        return op.reduceat(flat, at)[::2] if len(at) else np.zeros(0, dtype)

      part += [per_run(np.add, prob, np.float64), per_run(np.maximum, prob, np.float32),
               per_run(np.add, std, np.float64)]
    self._parts.append(part)

  def runs(self) -> Runs:
    if not self._parts:
      return Runs(*(np.zeros(0, np.int64) for _ in range(3)))
    return Runs(*(np.concatenate(c) for c in zip(*self._parts)))


def rows_mask(runs: Runs, row0, row1, width):
  """Bool (row1 - row0, width) band of the pixels covered by (disjoint) `runs`."""
  i0, i1 = np.searchsorted(runs.row, [row0, row1])
  diff = np.zeros((row1 - row0, width + 1), np.int8)
  np.add.at(diff, (runs.row[i0:i1] - row0, runs.start[i0:i1]), 1)
  np.add.at(diff, (runs.row[i0:i1] - row0, runs.end[i0:i1]), -1)
  return np.cumsum(diff, axis=1, dtype=np.int8)[:, :width] > 0


def label_runs(runs: Runs, width, connectivity=4):
  """Region index of every run (regions numbered in raster order of their first pixel)."""
  if connectivity not in CONNECTIVITIES:
    raise ConfigError(f'connectivity must be 4 or 8, got {connectivity}')
  n = len(runs)
  reach = 0 if connectivity == 4 else 1  # 8-connectivity also joins runs a corner apart
  span = width + 2  # keys of consecutive rows cannot interleave
  above = (runs.row - 1) * span
  lo = np.searchsorted(runs.row * span + runs.end, above + runs.start - reach, 'right')
  hi = np.searchsorted(runs.row * span + runs.start, above + runs.end + reach, 'left')
  counts = np.maximum(hi - lo, 0)
  a = np.repeat(np.arange(n), counts)
  b = lo[a] + np.arange(len(a)) - np.repeat(np.cumsum(counts) - counts, counts)
  graph = sparse.coo_matrix((np.ones(len(a), bool), (a, b)), shape=(n, n))
  _, labels = csgraph.connected_components(graph, directed=False)
  _, first, labels = np.unique(labels, return_index=True, return_inverse=True)
  return np.argsort(np.argsort(first))[labels]


@dataclasses.dataclass
class Region:
  """One mapped landslide; geometry in pixel-corner coordinates (x = column, y = row)."""
  polygons: list        # [[shell, hole, ...], ...]: closed (n, 2) rings, shells clockwise
  pixels: int           # area in pixels (holes included when filled)
  centroid: tuple       # (x, y) of the polygon
  detected: int         # pixels the model marked, over which the statistics run
  prob_sum: float
  prob_max: float
  std_sum: float


@dataclasses.dataclass
class Inventory:
  regions: list
  mapped: Runs          # every pixel of the kept regions (filled holes included)


def _edges(runs, comp):
  """Directed pixel-edge boundary of every region, landslide on the right-hand side.

  Returns (region, x0, y0, x1, y1, heading) per edge; vertical edges are the runs'
  ends, horizontal ones span where exactly one of two consecutive rows is covered.
  """
  row, start, end = runs.row, runs.start, runs.end
  region = [comp, comp]
  x0, y0, head = [start, end], [row + 1, row], [np.full_like(row, _N), np.full_like(row, _S)]
  x1, y1 = [start, end], [row, row + 1]
  # Events along each grid line y: the runs of row y - 1 ("above") and row y ("below").
  ev_comp = np.concatenate([comp, comp, comp, comp])
  ev_line = np.concatenate([row + 1, row + 1, row, row])
  ev_x = np.concatenate([start, end, start, end])
  below = np.concatenate([np.zeros(2 * len(row), np.int64), np.ones(2 * len(row), np.int64)])
  order = np.lexsort((ev_x, ev_line, ev_comp))
  ev_comp, ev_line, ev_x, below = ev_comp[order], ev_line[order], ev_x[order], below[order]
  # Coverage parity after each event; every run toggles twice, so groups start even.
  cov_below = np.cumsum(below) % 2
  cov_above = np.cumsum(1 - below) % 2
  seg = ((ev_comp[:-1] == ev_comp[1:]) & (ev_line[:-1] == ev_line[1:]) & (ev_x[:-1] < ev_x[1:])
         & (cov_below[:-1] != cov_above[:-1]))
  east = seg & (cov_below[:-1] == 1)
  west = seg & (cov_above[:-1] == 1)
  region += [ev_comp[:-1][east], ev_comp[:-1][west]]
  x0 += [ev_x[:-1][east], ev_x[1:][west]]
  x1 += [ev_x[1:][east], ev_x[:-1][west]]
  y0 += [ev_line[:-1][east], ev_line[:-1][west]]
  y1 += [ev_line[:-1][east], ev_line[:-1][west]]
  head += [np.full(east.sum(), _E), np.full(west.sum(), _W)]
  return tuple(np.concatenate(a).astype(np.int64) for a in (region, x0, y0, x1, y1, head))


def _trace(region, x0, y0, x1, y1, head, width, height, connectivity):
  """Closed loops as (edge indices loop after loop, each in walking order; loop sizes).

  Every loop is simple (no vertex visited twice). Where two landslide pixels meet
  at a corner, the loop turns to keep them apart under 4-connectivity and to join
  them under 8-connectivity; a loop that still meets itself there is split.
  """
  n_vertex = (height + 1) * (width + 1)
  start = region * n_vertex + y0 * (width + 1) + x0
  stop = region * n_vertex + y1 * (width + 1) + x1
  order = np.argsort(start * 4 + head)
  keys, starts = (start * 4 + head)[order], start[order]
  lo, hi = np.searchsorted(starts, stop, 'left'), np.searchsorted(starts, stop, 'right')
  turn = 1 if connectivity == 4 else 3  # right turn hugs the pixel; left crosses the corner
  corner = hi - lo == 2
  succ = order[lo]
  succ[corner] = order[np.searchsorted(keys, stop[corner] * 4 + (head[corner] + turn) % 4)]
  idx, label = _walk(succ)
  heads, size = np.unique(label, return_counts=True)  # loops in the order of `idx`
  # A loop that leaves the same corner twice is split there (rare: handled one by one).
  leaving = np.unique(succ[corner])
  o = np.lexsort((start[leaving], label[leaving]))
  lp, sp = label[leaving][o], start[leaving][o]
  bad = np.isin(heads, lp[1:][(lp[1:] == lp[:-1]) & (sp[1:] == sp[:-1])])
  if not bad.any():
    return idx, size
  first = np.cumsum(size) - size
  split = [np.asarray(l, np.int64) for f, n in zip(first[bad], size[bad])
           for l in _split(idx[f:f + n].tolist(), start)]
  idx = np.concatenate([idx[np.repeat(~bad, size)]] + split)
  return idx, np.concatenate([size[~bad], [len(l) for l in split]])


def _walk(succ):
  """Edges in walking order, loop after loop (by smallest edge), and the smallest edge
  of each edge's loop: pointer doubling, O(E log loop length) array operations."""
  n = len(succ)
  label, jump = np.arange(n), succ
  while True:  # the smallest edge within 2^k steps ahead, until that stops changing
    new = np.minimum(label, label[jump])
    jump = jump[jump]
    if np.array_equal(new, label):
      break
    label = new
  link = np.where(succ == label, np.arange(n), succ)  # a loop's last edge links to itself
  dist = (link != np.arange(n)).astype(np.int64)
  while not np.array_equal(link[link], link):  # steps left to the loop's last edge
    dist += dist[link]
    link = link[link]
  return np.lexsort((dist[label] - dist, label)), label


def _split(loop, start):
  """Splits a closed walk (edge list) into simple loops at the vertices it visits twice."""
  stack, pos, out = [], {}, []
  for e in loop:
    v = start[e]
    if v in pos:
      i = pos[v]
      out.append(stack[i:])
      for f in stack[i:]:
        del pos[start[f]]
      del stack[i:]
    pos[v] = len(stack)
    stack.append(e)
  out.append(stack)
  return out


def _rings(idx, size, x0, y0, head):
  """Corner vertices of each loop (collinear ones dropped), with twice its signed area
  and first moments (shoelace; positive for the clockwise shells)."""
  n = len(size)
  first = np.cumsum(size) - size
  ring = np.repeat(np.arange(n), size)
  prev = np.arange(len(idx)) - 1
  prev[first] = first + size - 1
  corner = head[idx] != head[idx[prev]]
  idx, ring = idx[corner], ring[corner]
  size = np.bincount(ring, minlength=n)
  first = np.cumsum(size) - size
  nxt = np.arange(len(idx)) + 1
  nxt[first + size - 1] = first
  x, y = x0[idx].astype(np.float64), y0[idx].astype(np.float64)
  cross = x * y[nxt] - x[nxt] * y
  area2 = np.bincount(ring, cross, n)
  mx = np.bincount(ring, (x + x[nxt]) * cross, n)
  my = np.bincount(ring, (y + y[nxt]) * cross, n)
  coords = np.stack([x, y], 1)
  out = [np.concatenate([coords[f:f + s], coords[f:f + 1]]) for f, s in zip(first, size)]
  return out, area2, mx, my


def _inside(point, ring):
  """Even-odd test of a point that lies on no edge of `ring` (closed (n, 2))."""
  (x, y), a, b = point, ring[:-1], ring[1:]
  spans = (a[:, 1] > y) != (b[:, 1] > y)
  at = a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / np.where(spans, b[:, 1] - a[:, 1], 1)
  return bool(np.sum(spans & (x < at)) % 2)


def ring_runs(ring):
  """(row, start, end) of the pixels enclosed by a closed rectilinear ring."""
  a, b = ring[:-1], ring[1:]
  vertical = a[:, 0] == b[:, 0]
  lo = np.minimum(a[vertical, 1], b[vertical, 1]).astype(np.int64)
  hi = np.maximum(a[vertical, 1], b[vertical, 1]).astype(np.int64)
  rows = np.repeat(lo, hi - lo) + np.arange((hi - lo).sum()) - np.repeat(
      np.cumsum(hi - lo) - (hi - lo), hi - lo)
  xs = np.repeat(a[vertical, 0], hi - lo).astype(np.int64)
  order = np.lexsort((xs, rows))
  rows, xs = rows[order], xs[order]
  return rows[::2], xs[::2], xs[1::2]


def _probes(e, x0, y0, head, side):
  """Centres (n, 2) of the pixels left (side=1) or right (side=-1) of the first unit
  of edges e: inside a hole's loop, or inside a shell's."""
  dx, dy = _STEP[head[e]].T
  return np.stack([x0[e] + 0.5 * dx + side * 0.5 * dy, y0[e] + 0.5 * dy - side * 0.5 * dx], 1)


def _nesting(shells, owner, rings, area2, inner):
  """(shell each hole belongs to, which shells lie in a hole of their own region).

  A region has one shell under 4-connectivity. Under 8-connectivity pieces joined
  at a corner are shells of their own, possibly inside the region's holes; a hole
  then belongs to the smallest shell of its region that encloses it.
  """
  parent, nested = np.full(len(rings), -1), np.zeros(len(rings), bool)
  shells_of, holes_of = {}, {}
  for r in range(len(rings)):
    (shells_of if shells[r] else holes_of).setdefault(owner[r], []).append(r)
  for c, candidates in shells_of.items():
    if len(candidates) == 1:
      parent[holes_of.get(c, [])] = candidates[0]
      continue
    for r in holes_of.get(c, []):
      parent[r] = min((s for s in candidates if _inside(inner[r], rings[s])),
                      key=lambda s: area2[s])
    for r in candidates:
      nested[r] = any(_inside(inner[r], rings[h]) for h in holes_of.get(c, []))
  return parent, nested


def _concat_runs(parts):
  return Runs(*(np.concatenate(c) for c in zip(*parts))) if parts else Runs(
      *(np.zeros(0, np.int64) for _ in range(3)))


def _swallowed(runs, comp, n, holes: Runs, hole_owner, width):
  """The region each region becomes part of: the one whose filled hole holds it, or itself.

  Holes of regions inside holes nest inside them (on every row, each run lies in
  or outside another), so the outermost runs alone answer the lookup.
  """
  if not len(holes):
    return np.arange(n)
  span = width + 2
  order = np.lexsort((-holes.end, holes.start, holes.row))
  row, start, end, owner = holes.row[order], holes.start[order], holes.end[order], hole_owner[order]
  reach = np.maximum.accumulate(row * span + end)
  outer = np.ones(len(row), bool)
  outer[1:] = row[1:] * span + end[1:] > reach[:-1]
  row, start, end, owner = row[outer], start[outer], end[outer], owner[outer]
  _, first = np.unique(comp, return_index=True)  # runs are in raster order
  q_row, q_col = runs.row[first], runs.start[first]
  i = np.maximum(np.searchsorted(row * span + start, q_row * span + q_col, 'right') - 1, 0)
  inside = (row[i] == q_row) & (start[i] <= q_col) & (end[i] > q_col)
  into = np.where(inside, owner[i], np.arange(n))
  while not np.array_equal(into[into], into):  # an equal run may name an inner region
    into = into[into]
  return into


def _outlines(runs, comp, width, height, connectivity):
  """Rings of every region, traced a group of whole regions at a time: (rings, twice
  the signed areas, first moments x and y, region, a point inside each ring's loop)."""
  order = np.argsort(comp, kind='stable')
  ends = np.nonzero(np.diff(comp[order]))[0] + 1  # where one region's runs end
  cuts = ends[np.nonzero(np.diff(ends // TRACE_CHUNK_RUNS, prepend=0))[0]]
  out = []
  for part in np.split(order, cuts):
    sub = Runs(runs.row[part], runs.start[part], runs.end[part])
    region, x0, y0, x1, y1, head = _edges(sub, comp[part])
    idx, size = _trace(region, x0, y0, x1, y1, head, width, height, connectivity)
    rings, area2, mx, my = _rings(idx, size, x0, y0, head)
    first = idx[np.cumsum(size) - size]
    # Inside a shell (landslide on the right of its edges) or a hole (on the left).
    inner = np.where((area2 > 0)[:, None], _probes(first, x0, y0, head, -1),
                     _probes(first, x0, y0, head, 1))
    out.append((rings, area2, mx, my, region[first], inner))
  return ([r for o in out for r in o[0]],) + tuple(np.concatenate([o[k] for o in out])
                                                  for k in range(1, 6))


def build(runs: Runs, width, height, connectivity=4, fill_holes=False,
          min_pixels=0.0) -> Inventory:
  """Regions of the landslide `runs` (with statistics) as exact polygons, in raster order."""
  if not len(runs):
    return Inventory([], runs)
  comp = label_runs(runs, width, connectivity)
  n = comp.max() + 1
  detected = np.bincount(comp, runs.end - runs.start, n)
  prob_sum, std_sum = np.bincount(comp, runs.prob_sum, n), np.bincount(comp, runs.std_sum, n)
  prob_max = np.full(n, -np.inf)
  np.maximum.at(prob_max, comp, runs.prob_max)

  rings, area2, mx, my, owner, inner = _outlines(runs, comp, width, height, connectivity)
  shells = area2 > 0
  parent, nested = _nesting(shells, owner, rings, area2, inner)

  into = np.arange(n)
  if fill_holes:  # a region becomes its outermost shells; regions inside join it
    keep_ring = shells & ~nested
    pixels = np.bincount(owner[keep_ring], area2[keep_ring] / 2, n)
    holes = np.nonzero(~shells)[0]
    parts = [ring_runs(rings[h]) for h in holes]
    into = _swallowed(runs, comp, n, _concat_runs(parts), np.repeat(
        owner[holes], [len(p[0]) for p in parts]).astype(np.int64), width)
    island = into != np.arange(n)
    for stat in (detected, prob_sum, std_sum):
      np.add.at(stat, into[island], stat[island].copy())
    np.maximum.at(prob_max, into[island], prob_max[island].copy())
  else:
    keep_ring, pixels = np.ones(len(rings), bool), detected.astype(np.float64)
  keep = (into == np.arange(n)) & (pixels >= min_pixels)

  # A polygon's centroid from its rings' signed first moments (holes count negative).
  area = np.bincount(owner[keep_ring], area2[keep_ring], n)
  with np.errstate(invalid='ignore', divide='ignore'):  # regions swallowed have no rings
    cx = np.bincount(owner[keep_ring], mx[keep_ring], n) / (3 * area)
    cy = np.bincount(owner[keep_ring], my[keep_ring], n) / (3 * area)
  polygons = [{} for _ in range(n)]
  for r in np.nonzero(shells & keep_ring)[0]:
    polygons[owner[r]][r] = [rings[r]]
  for r in np.nonzero(~shells & keep_ring)[0]:
    polygons[owner[r]][parent[r]].append(rings[r])
  regions = [Region(list(polygons[c].values()), int(round(pixels[c])),
                    (float(cx[c]), float(cy[c])), int(detected[c]), float(prob_sum[c]),
                    float(prob_max[c]), float(std_sum[c])) for c in np.nonzero(keep)[0]]
  if fill_holes:
    kept = np.nonzero(keep_ring & keep[owner])[0]
    mapped = _concat_runs([ring_runs(rings[r]) for r in kept])
  else:
    mapped = Runs(runs.row[keep[comp]], runs.start[keep[comp]], runs.end[keep[comp]])
  order = np.lexsort((mapped.start, mapped.row))
  return Inventory(regions, Runs(mapped.row[order], mapped.start[order], mapped.end[order]))


def epsg_code(geo) -> Optional[int]:
  """The EPSG code a GeoTIFF's GeoKeyDirectory names for its CRS, if any."""
  keys = geo.tag(34735) if geo else None
  if keys is None:
    return None
  keys = [int(k) for k in keys]
  for i in range(4, 4 + 4 * keys[3], 4):
    key, location, _, value = keys[i:i + 4]
    if key in _CRS_KEYS and location == 0 and value not in (0, _USER_DEFINED):
      return value
  return None


def _to_output(ring, geo):
  """Pixel-corner ring -> output coordinates (map, or pixel when `geo` is None)."""
  if geo is None:
    return ring
  x, y = geo.pixel_to_map(ring[:, 1], ring[:, 0])
  return np.stack([x, y], 1)


def columns(geo, uncertainty=False):
  """Property names of a region: areas and lengths in map units (m) or pixels."""
  unit = 'm' if geo else 'px'
  names = ['id', f'area_{unit}2', f'perimeter_{unit}', 'centroid_x', 'centroid_y', 'pixels',
           'mean_probability', 'max_probability']
  return names + ['mean_uncertainty'] if uncertainty else names


def features(inventory: Inventory, geo, uncertainty=False):
  """Yields a GeoJSON feature per region, ids from 1 in raster order.

  Rings follow RFC 7946: shells counter-clockwise, holes clockwise, in the sense
  of the output axes (map x, y; or pixel column, row when there is no georeferencing).
  """
  pixel_area = geo.pixel_area if geo else 1.0
  names = columns(geo, uncertainty)
  # Shells run clockwise as seen: positive area in (column, row), negative once a
  # north-up transform turns rows into northings.
  flip = geo is not None and np.linalg.det(geo.transform[:2, :2]) < 0
  for i, region in enumerate(inventory.regions, 1):
    polygons = [[_to_output(r, geo) for r in poly] for poly in region.polygons]
    if flip:
      polygons = [[r[::-1] for r in poly] for poly in polygons]
    perimeter = sum(float(np.hypot(*np.diff(r, axis=0).T).sum()) for p in polygons for r in p)
    cx, cy = region.centroid
    if geo is not None:
      cx, cy = (float(v) for v in geo.pixel_to_map(cy, cx))
    props = dict(zip(names, (i, region.pixels * pixel_area, perimeter, cx, cy, region.pixels,
                             region.prob_sum / region.detected, region.prob_max,
                             region.std_sum / region.detected)))
    coords = [[r.tolist() for r in poly] for poly in polygons]
    geometry = ({'type': 'Polygon', 'coordinates': coords[0]} if len(coords) == 1 else
                {'type': 'MultiPolygon', 'coordinates': coords})
    yield {'type': 'Feature', 'id': i, 'geometry': geometry, 'properties': props}


def write(inventory: Inventory, geo, geojson_path, csv_path, uncertainty=False):
  """Writes the regions as a GeoJSON FeatureCollection and a CSV of their properties,
  one feature at a time; returns (regions, their total area in output units)."""
  header = {'type': 'FeatureCollection'}
  code = epsg_code(geo)
  if code is not None:
    header['crs'] = {'type': 'name', 'properties': {'name': f'urn:ogc:def:crs:EPSG::{code}'}}
  elif geo is not None:
    # GDAL reads a "name" CRS as any definition it accepts, WKT included; without
    # one it takes the coordinates for WGS84 degrees.
    wkt = geo.crs_wkt
    if wkt:
      header['crs'] = {'type': 'name', 'properties': {'name': wkt}}
    header['note'] = ('map coordinates of the input GeoTIFF grid (a CRS given by '
                      'parameters: see its GeoKeys); areas in square map units')
  else:
    header['note'] = ('pixel coordinates (x = column, y = row, from the top-left '
                      'corner): the input has no georeferencing; areas in pixels')
  names = columns(geo, uncertainty)
  count, area = 0, 0.0
  with open(geojson_path, 'w') as gj, open(csv_path, 'w', newline='') as table:
    gj.write(json.dumps(header)[:-1] + ', "features": [')
    rows = csv.DictWriter(table, names)
    rows.writeheader()
    for feature in features(inventory, geo, uncertainty):
      gj.write((',\n' if count else '\n') + json.dumps(feature))
      rows.writerow(feature['properties'])
      count, area = count + 1, area + feature['properties'][names[1]]
    gj.write('\n]}\n')
  return count, area
