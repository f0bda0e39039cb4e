"""Benchmark (not a test): predict's time and peak memory against the scene's size.

python -m dpfcn_jax.scene_benchmark --workdir=W --sizes=1000,4000,10000x1000 [--scratch=DIR]

For each size (S for S x S, or ROWSxCOLS) it writes a synthetic pre/post pair as
tiled, compressed GeoTIFFs (one generated scene repeated, written band by band,
so building stays small too), runs `python -m dpfcn_jax.predict` on it in a fresh
process, and records wall time and that process's peak resident memory
(os.wait4). Prints a Markdown table: time should grow with the area; memory
should not grow with the number of rows, only slightly with the row width.

python -m dpfcn_jax.scene_benchmark --workdir=W --batch_scenes=10,50 [--batch_side=512]

maps N scenes of batch_side x batch_side as one `predict --scenes` batch, for each N:
scenes/s, and peak memory, which should not grow with the number of scenes.
"""
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time

from absl import app, flags
import numpy as np

from dpfcn_jax import cli, output_dir
from dpfcn_jax.data import io, streaming, synthetic

BASE_SIDE = 1000      # the generated scene that is repeated to fill larger ones
BASE_SEED = 400_000   # outside the train/val/test seed ranges of configs/default.py
PIXEL_M = 0.5         # ground sample distance of the written GeoTIFFs, as Lantau's
ORIGIN = (800_000.0, 820_000.0)  # upper-left corner in map metres (arbitrary)
KIB = 1024

_WORKDIR = flags.DEFINE_string('workdir', None, 'Trained model (e.g. the synthetic demo).')
_SIZES = flags.DEFINE_list('sizes', ['1000', '4000', '10000'],
                           'Scene sizes: S (S x S pixels) or ROWSxCOLS.')
_SCRATCH = flags.DEFINE_string('scratch', None, 'Where scenes and outputs go, kept: a new or '
                                'empty folder, or one of an earlier run (default: a temporary '
                                'folder, removed at the end).')
_BATCH = flags.DEFINE_list('batch_scenes', [], 'Batch mode: numbers of scenes per batch.')
_BATCH_SIDE = flags.DEFINE_integer('batch_side', 512, 'Batch mode: side of each scene.')
flags.mark_flags_as_required(['workdir'])


def write_scene(folder, height, width, base):
  """pre.tif and post.tif of height x width pixels tiled from `base`, georeferenced."""
  geo = io.GeoInfo(((33550, 12, 3, (PIXEL_M, PIXEL_M, 0.0)),
                    (33922, 12, 6, (0.0, 0.0, 0.0, *ORIGIN, 0.0))))
  cols = np.arange(width) % BASE_SIDE
  for name in ('pre', 'post'):
    with streaming.RowWriter(os.path.join(folder, f'{name}.tif'), height, width, np.uint8, geo,
                             rgb=True) as writer:
      for r0 in range(0, height, streaming.OUTPUT_TILE):
        rows = np.arange(r0, min(height, r0 + streaming.OUTPUT_TILE)) % BASE_SIDE
        writer.write(base[name][rows][:, cols])


def run_predict(workdir, folder, *flags_):
  """(seconds, peak RSS in MiB, output) of one predict process."""
  cmd = [sys.executable, '-m', 'dpfcn_jax.predict', f'--workdir={workdir}',
         *(flags_ or (f'--pre={folder}/pre.tif', f'--post={folder}/post.tif')),
         f'--out={folder}/out']
  start = time.time()
  proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  output = proc.stdout.read()
  _, status, usage = os.wait4(proc.pid, 0)
  seconds = time.time() - start
  if os.waitstatus_to_exitcode(status) != 0:
    raise RuntimeError(f'predict failed:\n{output}')
  return seconds, usage.ru_maxrss / KIB, output  # ru_maxrss is in KiB on Linux


def main(argv):
  del argv
  with cli.user_errors(), contextlib.ExitStack() as stack:
    if _SCRATCH.value:
      scratch = str(output_dir.claim(_SCRATCH.value, 'scene_benchmark'))
    else:
      scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix='scene_benchmark-'))
    (run_batches if _BATCH.value else run_sizes)(scratch)


def run_sizes(scratch):
  """Writes, maps and reports each size of --sizes under `scratch`."""
  base = synthetic.generate_scene(BASE_SEED, BASE_SIDE, BASE_SIDE)
  print('| scene (rows x cols) | Mpx | predict s | s per Mpx | windows/s | peak RSS MiB | '
        'landslides |')
  print('|---|---|---|---|---|---|---|')
  for size in _SIZES.value:
    height, width = (int(v) for v in (size.split('x') if 'x' in size else (size, size)))
    folder = os.path.join(scratch, f'{height}x{width}')
    os.makedirs(folder, exist_ok=True)
    write_scene(folder, height, width, base)
    seconds, rss, output = run_predict(_WORKDIR.value, folder)
    summary = [l for l in output.splitlines() if 'landslides,' in l][-1]
    rate = re.search(r'at ([\d.]+)/s', summary).group(1)
    found = summary.split(' landslides')[0]
    mpx = height * width / 1e6
    print(f'| {height} x {width} | {mpx:g} | {seconds:.0f} | {seconds / mpx:.1f} | {rate} | '
          f'{rss:.0f} | {found} |', flush=True)


def run_batches(scratch):
  """Maps each --batch_scenes count of scenes (one pair, listed N times) as one batch."""
  side = _BATCH_SIDE.value
  folder = os.path.join(scratch, f'scene{side}')
  os.makedirs(folder, exist_ok=True)
  write_scene(folder, side, side, synthetic.generate_scene(BASE_SEED, BASE_SIDE, BASE_SIDE))
  print('| scenes | side px | batch s | scenes/s | Mpx/s | peak RSS MiB |')
  print('|---|---|---|---|---|---|')
  for count in (int(n) for n in _BATCH.value):
    batch = os.path.join(scratch, f'batch{count}')
    os.makedirs(batch, exist_ok=True)
    with open(os.path.join(batch, 'scenes.csv'), 'w') as f:
      f.write('id,pre,post\n' + ''.join(f's{i:04d},{folder}/pre.tif,{folder}/post.tif\n'
                                          for i in range(count)))
    seconds, rss, _ = run_predict(_WORKDIR.value, batch, f'--scenes={batch}/scenes.csv')
    print(f'| {count} | {side} | {seconds:.0f} | {count / seconds:.2f} | '
          f'{count * side * side / 1e6 / seconds:.2f} | {rss:.0f} |', flush=True)


if __name__ == '__main__':
  app.run(main)
