"""Many scenes, one network: DIR/<id>/ per scene, resumable, failures kept apart.

python -m dpfcn_jax.predict --workdir=W --scenes=MANIFEST --out=DIR [--shard=I/N]

The scenes come from a manifest: a CSV with columns id, pre, post and optionally
mask (paths relative to the CSV's folder), or a folder of <id>/{pre,post}.<ext>
folders (a mask.<ext> beside them is used). Each process takes every N-th scene
(N = processes of a jax.distributed job, or the --shard of a SLURM array task),
restores the network once and maps its scenes one by one with predict_lib; a scene
whose folder is complete (our marker) is skipped, so a killed batch run again
finishes only what is missing. A scene that fails is recorded with its reason in
DIR/.failed/<id>.json and the others go on. Once every scene is settled, the
process that sees it last merges the inventories (mosaic.py) and lays the LIMs out
as one virtual raster (mosaic_vrt.py).
"""
import csv
import dataclasses
import json
import logging
import os
import pathlib
import re
import time
from typing import Optional

import jax

from dpfcn_jax import mosaic, mosaic_vrt, output_dir, predict_lib, scene_map
from dpfcn_jax.data import io
from dpfcn_jax.errors import DpfcnError, InputError

ID = re.compile(r'[A-Za-z0-9][A-Za-z0-9._-]*')  # a folder name on every file system
FAILED = '.failed'
SUMMARY = 'summary.json'

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Scene:
  id: str
  pre: Optional[str]
  post: Optional[str]
  mask: Optional[str] = None
  problem: Optional[str] = None  # why it cannot be mapped, found while listing


def _checked_id(value, where):
  if not ID.fullmatch(value or ''):
    raise InputError(f'{where}: scene id {value!r} must be letters, digits, ".", "_" or "-", '
                     'starting with a letter or digit')
  return value


def _from_folder(folder):
  scenes = []
  for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith('.')):
    sid = _checked_id(sub.name, sub)
    try:
      pre, post = (str(io.find_image(sub, k)) for k in ('pre', 'post'))
    except InputError as e:
      scenes.append(Scene(sid, None, None, problem=str(e)))
      continue
    has_mask = any(p.stem == 'mask' and p.suffix.lower() in io.IMAGE_SUFFIXES
                   for p in sub.iterdir())
    scenes.append(Scene(sid, pre, post, str(io.find_image(sub, 'mask')) if has_mask else None))
  return scenes


def _from_csv(path):
  base = path.parent
  try:
    with open(path, newline='') as f:
      rows = list(csv.DictReader(f))
      columns = set(rows[0]) if rows else set()
  except (OSError, UnicodeDecodeError, csv.Error) as e:
    raise InputError(f'{path}: not a readable CSV manifest ({e})') from e
  missing = {'id', 'pre', 'post'} - columns
  if missing:
    raise InputError(f'{path}: manifest needs the columns id, pre, post (and optionally mask); '
                     f'missing {", ".join(sorted(missing))}')
  resolve = lambda v: str(base / v) if v and v.strip() else None
  return [Scene(_checked_id(r['id'].strip(), f'{path} line {i}'), resolve(r['pre']),
                resolve(r['post']), resolve(r.get('mask')))
          for i, r in enumerate(rows, 2)]


def read_manifest(path):
  """The scenes a manifest lists, in its order; InputError for a manifest that cannot be."""
  path = pathlib.Path(path)
  if path.is_dir():
    scenes = _from_folder(path)
  elif path.is_file():
    scenes = _from_csv(path)
  else:
    raise InputError(f'{path}: manifest not found (a CSV of id,pre,post or a folder of scenes)')
  if not scenes:
    raise InputError(f'{path}: the manifest lists no scenes')
  seen = set()
  for s in scenes:
    if s.id in seen:
      raise InputError(f'{path}: scene id {s.id!r} appears twice')
    seen.add(s.id)
  return scenes


def parse_shard(text):
  """'I/N' -> (I, N); SLURM array tasks give it from their index and count."""
  match = re.fullmatch(r'(\d+)/(\d+)', text or '')
  if not match or not int(match[1]) < int(match[2]):
    raise InputError(f'--shard {text!r}: expected I/N with 0 <= I < N')
  return int(match[1]), int(match[2])


def slurm_shard(environ=None):
  """'I/N' of a SLURM array task (its index relative to the array's first), or None."""
  env = os.environ if environ is None else environ
  if 'SLURM_ARRAY_TASK_ID' not in env or 'SLURM_ARRAY_TASK_COUNT' not in env:
    return None
  first = int(env.get('SLURM_ARRAY_TASK_MIN', 0))
  return f'{int(env["SLURM_ARRAY_TASK_ID"]) - first}/{env["SLURM_ARRAY_TASK_COUNT"]}'


def status(out, scene_id):
  """'done', 'failed' or 'todo' for one scene of a batch in `out`."""
  if output_dir.owned_files(os.path.join(out, scene_id)) is not None:
    return 'done'
  return 'failed' if os.path.exists(os.path.join(out, FAILED, f'{scene_id}.json')) else 'todo'


def _record_failure(out, scene, reason, seconds):
  folder = os.path.join(out, FAILED)
  os.makedirs(folder, exist_ok=True)
  tmp = os.path.join(folder, f'.{scene.id}.json.tmp')
  with open(tmp, 'w') as f:
    json.dump({'id': scene.id, 'reason': reason, 'seconds': seconds}, f)
  os.replace(tmp, os.path.join(folder, f'{scene.id}.json'))


def _clear_failure(out, scene_id):
  path = os.path.join(out, FAILED, f'{scene_id}.json')
  if os.path.exists(path):
    os.unlink(path)  # our own record of an earlier failure of this scene


def map_share(mapper, scenes, out, shard):
  """Maps this shard's unfinished scenes; returns how many it mapped and how many failed."""
  index, count = shard
  mine = [s for i, s in enumerate(scenes) if i % count == index]
  todo = [s for s in mine if status(out, s.id) != 'done']
  log.info('shard %d/%d: %d scenes, %d already done, %d to map', index, count, len(mine),
           len(mine) - len(todo), len(todo))
  if not todo:
    return 0, 0
  t0, failed = time.time(), 0
  for k, scene in enumerate(todo, 1):
    start = time.time()
    try:
      if scene.problem:
        raise InputError(scene.problem)
      summary = predict_lib.map_scene(mapper, scene.pre, scene.post,
                                      os.path.join(out, scene.id), scene.mask)
      _clear_failure(out, scene.id)
      log.info('scene %s: %d landslides, %.1f %s', scene.id, summary['landslides'],
               summary['area'], summary['area_unit'])
    except DpfcnError as e:
      failed += 1
      _record_failure(out, scene, str(e), time.time() - start)
      log.error('scene %s failed: %s', scene.id, e)
    rate = k / (time.time() - t0)
    log.info('scenes %d/%d of this shard, %.2f scenes/s, ETA %s', k, len(todo), rate,
             predict_lib.duration((len(todo) - k) / rate))
  return len(todo), failed


def summary_rows(scenes, out):
  """One row per scene: id, status, landslides, area, seconds, reason."""
  rows = []
  for s in scenes:
    state = status(out, s.id)
    row = {'id': s.id, 'status': state, 'landslides': '', 'area': '', 'area_unit': '',
           'seconds': '', 'reason': ''}
    if state == 'done':
      with open(os.path.join(out, s.id, SUMMARY)) as f:
        row.update({k: v for k, v in json.load(f).items() if k in row})
    elif state == 'failed':
      with open(os.path.join(out, FAILED, f'{s.id}.json')) as f:
        record = json.load(f)
      row.update(reason=record['reason'], seconds=record['seconds'])
    rows.append(row)
  return rows


def format_summary(rows):
  """A markdown table of the rows and a totals line."""
  lines = ['| scene | status | landslides | area | s | reason |', '|---|---|---|---|---|---|']
  for r in rows:
    area = f'{r["area"]:.1f} {r["area_unit"]}' if r['area'] != '' else ''
    secs = f'{r["seconds"]:.1f}' if r['seconds'] != '' else ''
    lines.append(f'| {r["id"]} | {r["status"]} | {r["landslides"]} | {area} | {secs} | '
                 f'{r["reason"]} |')
  done = [r for r in rows if r['status'] == 'done']
  lines.append(f'{len(done)} done, {sum(r["status"] == "failed" for r in rows)} failed, '
               f'{sum(r["status"] == "todo" for r in rows)} not yet mapped; '
               f'{sum(r["landslides"] for r in done)} landslides')
  return '\n'.join(lines)


def run(workdir, manifest, out, step=None, overrides=None, shard=None):
  """Maps this process's share of the manifest into `out`; merges once all are settled.

  Returns (summary rows of every scene, merged-inventory summary or None).
  """
  scenes = read_manifest(manifest)
  out = str(output_dir.claim(out, 'predict --scenes'))
  shard = shard or (jax.process_index(), jax.process_count())
  # Every process restores, with work or without: orbax restores collectively in a
  # jax.distributed job, so one that skipped it would leave the others waiting.
  mapper = scene_map.SceneMapper.restore(workdir, step, overrides=overrides)
  map_share(mapper, scenes, out, shard)
  merged = None
  with output_dir.lock(out):  # two shards finishing together merge one after the other
    if all(status(out, s.id) != 'todo' for s in scenes):
      done = [s.id for s in scenes if status(out, s.id) == 'done']
      merged = mosaic.write(out, done, mapper.infer)
      mosaic_vrt.write(out, done)
  return summary_rows(scenes, out), merged
