"""Bad inputs through the command lines: exit 2, one line naming the file, no outputs.

tests/test_io.py and tests/test_pipeline.py pin the readers' messages; here each
fault goes through train, eval or predict as a user meets it, and every file
around the run (workdir, output folder, inputs) must be as it was before.
The runs start together, two at a time, since each spends seconds importing.
"""
import concurrent.futures
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from PIL import Image

import fixture_data
from conftest import REPO, load_config
from dpfcn_jax import output_dir, train_lib
from dpfcn_jax.data import io

SIDE = (32, 48)
# A made-up georeferencing: 0.5 m pixels, upper-left corner at map (1000, 2000).
GEO = io.GeoInfo(((33550, 12, 3, (0.5, 0.5, 0.0)),
                  (33922, 12, 6, (0.0, 0.0, 0.0, 1000.0, 2000.0, 0.0))))
TINY = {'model.width': 4, 'model.depth': 2, 'data.tile': 32, 'infer.stride': 24,
        'batch_size': 2, 'num_train_steps': 1, 'log_every_steps': 1, 'eval_every_steps': 0,
        'checkpoint_every_steps': 1, 'data.synthetic.min_side': 96,
        'data.synthetic.max_side': 96, 'data.synthetic.num_scenes.train': 1}
FLAGS = [f'--config.{k}={v}' for k, v in TINY.items()]
PARALLEL_RUNS = 2
TIMEOUT_S = 300


def _run(module, *args):
  env = dict(os.environ, JAX_PLATFORMS='cpu', JAX_NUM_CPU_DEVICES='2')
  return subprocess.run([sys.executable, '-m', module, *map(str, args)], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=TIMEOUT_S)


def _image(path, array):
  if path.suffix == '.tif':
    tifffile.imwrite(path, array, photometric='rgb' if array.shape[-1] == 3 else 'minisblack')
  else:
    Image.fromarray(array).save(path)
  return path


def _scene(folder, mask=True):
  """A valid site: random uint8 pre/post PNGs and a 0/255 mask of SIDE pixels."""
  rng = np.random.default_rng(0)
  folder.mkdir(parents=True, exist_ok=True)
  pre = _image(folder / 'pre.png', rng.integers(0, 256, SIDE + (3,), np.uint8))
  post = _image(folder / 'post.png', rng.integers(0, 256, SIDE + (3,), np.uint8))
  if mask:
    _image(folder / 'mask.png', (rng.random(SIDE) > 0.8).astype(np.uint8) * 255)
  return pre, post


def _replace(old, new_name, array):
  old.unlink()
  return _image(old.with_name(new_name), array)


def _missing_post(folder):
  (folder / 'post.png').unlink()
  return folder  # the message names the site folder that lacks it


def _not_an_image(folder):
  (folder / 'post.png').write_text('not a picture')
  return folder / 'post.png'


def _truncated_tiff(folder):
  path = _replace(folder / 'pre.png', 'pre.tif', np.zeros(SIDE + (3,), np.uint8))
  path.write_bytes(path.read_bytes()[:200])
  return path


def _nan_and_inf(folder):
  a = np.full(SIDE + (3,), 0.5, np.float32)
  a[1, 2, 0], a[3, 4, 2] = np.nan, np.inf
  return _replace(folder / 'post.png', 'post.tif', a)


def _all_nodata(folder):
  (folder / 'pre.png').unlink()
  fixture_data.write_geotiff(folder / 'pre.tif', np.zeros(SIDE + (3,), np.uint8), None, nodata=0)
  return folder / 'pre.tif'


def _georeferencing(folder):
  for name, geo in (('pre', GEO), ('post', GEO.window(5, 5))):
    (folder / f'{name}.png').unlink()
    fixture_data.write_geotiff(folder / f'{name}.tif', np.full(SIDE + (3,), 9, np.uint8), geo)
  return folder / 'post.tif'


# Each breaks one file of a valid site: -> (file or folder named, words of the problem).
SITE_FAULTS = {
    'missing file': lambda f: (_missing_post(f), 'no post image'),
    'not an image': lambda f: (_not_an_image(f), 'not a readable image'),
    'truncated TIFF': lambda f: (_truncated_tiff(f), 'not a readable image'),
    'pre/post size': lambda f: (_replace(f / 'post.png', 'post.png',
                                         np.zeros((32, 40, 3), np.uint8)), 'size 40x32'),
    'mask size': lambda f: (_replace(f / 'mask.png', 'mask.png', np.zeros((30, 48), np.uint8)),
                            'mask size 48x30'),
    'band count': lambda f: (_replace(f / 'pre.png', 'pre.tif',
                                      np.zeros(SIDE + (5,), np.uint8)), 'has 5 bands'),
    'pixel type': lambda f: (_replace(f / 'pre.png', 'pre.tif', np.zeros(SIDE + (3,), np.int32)),
                             'unsupported pixel type int32'),
    'NaN/Inf pixels': lambda f: (_nan_and_inf(f), '2 NaN/Inf pixel values'),
    'all nodata': lambda f: (_all_nodata(f), 'every pixel is nodata'),
    'georeferencing': lambda f: (_georeferencing(f), 'georeferencing disagrees'),
}
# Through train, faults that stop load_site at different points; tests/test_io.py pins
# the message of every other one, and predict below meets them through its own reader.
TRAIN_FAULTS = ('missing file', 'truncated TIFF', 'mask size', 'georeferencing')
# predict streams TIFFs by rows: a truncated one fails on its first rows instead.
PREDICT_WORDS = {'truncated TIFF': 'cannot be decoded'}


def _train(tmp, *flags):
  return ('dpfcn_jax.train', '--config=configs/default.py', f'--workdir={tmp / "workdir"}',
          *FLAGS, *flags)


def _site(folder):
  _scene(folder)
  return folder


def _train_on_broken_site(fault):
  def case(tmp, trained):
    del trained
    path, words = SITE_FAULTS[fault](_site(tmp / 'root' / 'train' / 'site-a'))
    return _train(tmp, f'--config.data.root={tmp / "root"}'), [path, words]
  return case


def _train_with_config(flags, words):
  def case(tmp, trained):
    del trained
    root = tmp / 'root'
    (root / 'train').mkdir(parents=True)
    return (_train(tmp, *(f.format(root=root) for f in flags)),
            [w.format(root=root) for w in words])
  return case


def _eval_on_broken_site(tmp, trained):
  path, words = SITE_FAULTS['truncated TIFF'](_site(tmp / 'root' / 'val' / 'site-a'))
  return (('dpfcn_jax.eval', '--config=configs/default.py', f'--workdir={trained}',
           '--split=val', f'--config.data.root={tmp / "root"}', *FLAGS), [path, words])


def _eval_after_an_interrupted_first_save(tmp, trained):
  del trained
  # All a kill during the first save leaves: orbax's scratch folder, never renamed.
  (tmp / 'workdir' / 'checkpoints' / '2.orbax-checkpoint-tmp-1').mkdir(parents=True)
  _site(tmp / 'root' / 'val' / 'site-a')
  return (('dpfcn_jax.eval', '--config=configs/default.py', f'--workdir={tmp / "workdir"}',
           '--split=val', f'--config.data.root={tmp / "root"}', *FLAGS),
          [tmp / 'workdir', 'no checkpoint found'])


def _predict(workdir, pre, post, out, *flags):
  return ('dpfcn_jax.predict', f'--workdir={workdir}', f'--pre={pre}', f'--post={post}',
          f'--out={out}', *flags)


def _pair(folder):
  return [next(folder.glob(f'{n}.*')) for n in ('pre', 'post')]


def _predict_on_broken_pair(fault, existing_out=False):
  def case(tmp, trained):
    _scene(tmp / 'scene', mask=False)
    path, words = SITE_FAULTS[fault](tmp / 'scene')
    if existing_out:  # an earlier result of ours, which a failed run must not touch
      (tmp / 'out').mkdir()
      (tmp / 'out' / 'lim.tif').write_text('an earlier result')
      (tmp / 'out' / output_dir.MARKER).write_text(
          json.dumps({'tool': output_dir.TOOL, 'files': ['lim.tif']}))
    return (_predict(trained, *_pair(tmp / 'scene'), tmp / 'out'),
            [path, PREDICT_WORDS.get(fault, words)])
  return case


def _predict_missing_pre(tmp, trained):
  _, post = _scene(tmp / 'scene', mask=False)
  return _predict(trained, tmp / 'nope.tif', post, tmp / 'out'), [tmp / 'nope.tif',
                                                                 'file not found']


def _predict_mask_size(tmp, trained):
  pre, post = _scene(tmp / 'scene', mask=False)
  mask = _image(tmp / 'mask.png', np.zeros((30, 48), np.uint8))
  return _predict(trained, pre, post, tmp / 'out', f'--mask={mask}'), [mask, 'mask size 48x30']


def _predict_without_checkpoint(tmp, trained):
  del trained
  pre, post = _scene(tmp / 'scene', mask=False)
  return _predict(tmp / 'empty', pre, post, tmp / 'out'), [tmp / 'empty', 'no checkpoint found']


CASES = {
    **{f'train: {f}': _train_on_broken_site(f) for f in TRAIN_FAULTS},
    'train: data.root empty': _train_with_config(['--config.data.root='], ['data.root is empty']),
    'train: no sites': _train_with_config(['--config.data.root={root}'],
                                          ['{root}/train', 'no site folders']),
    'train: listed site missing': _train_with_config(
        ['--config.data.root={root}', "--config.data.train_sites=('gone',)"],
        ['{root}/gone', 'site folder not found']),
    'train: batch vs devices': _train_with_config(
        ['--config.data.root={root}', '--config.batch_size=3'], ['batch_size 3']),
    'eval: truncated TIFF': _eval_on_broken_site,
    'eval: only an interrupted save': _eval_after_an_interrupted_first_save,
}
PREDICT_CASES = {
    **{f'predict: {f}': _predict_on_broken_pair(f) for f in SITE_FAULTS
       if f not in ('missing file', 'mask size')},
    'predict: NaN midway, earlier output kept': _predict_on_broken_pair('NaN/Inf pixels', True),
    'predict: missing file': _predict_missing_pre,
    'predict: mask size': _predict_mask_size,
    'predict: no checkpoint': _predict_without_checkpoint,
}


def _snapshot(*roots):
  """Every path under `roots` with the bytes of its files."""
  return {p: (p.read_bytes() if p.is_file() else None) for root in roots
          for p in [root, *sorted(root.rglob('*'))] if p.exists()}


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """A workdir holding a one-step checkpoint of a tiny model."""
  config = load_config('synthetic')
  config.update_from_flattened_dict(TINY)
  workdir = tmp_path_factory.mktemp('trained')
  train_lib.train_and_evaluate(config, str(workdir))
  return workdir


@pytest.fixture(scope='module')
def runs(tmp_path_factory, trained):
  """Starts every case at once; -> {case: (future, message fragments, tmp, snapshot)}."""
  cases = {**CASES, **PREDICT_CASES}
  with concurrent.futures.ThreadPoolExecutor(PARALLEL_RUNS) as pool:
    started = {}
    for name, case in cases.items():
      tmp = tmp_path_factory.mktemp('case')
      args, fragments = case(tmp, trained)
      started[name] = (pool.submit(_run, *args), fragments, tmp, _snapshot(tmp, trained))
    yield started
    for future, *_ in started.values():
      future.cancel()


@pytest.mark.parametrize('case', [*CASES, *PREDICT_CASES])
def test_bad_input_exits_2_naming_the_file_and_writes_nothing(runs, trained, case):
  future, fragments, tmp, before = runs[case]
  r = future.result()
  assert r.returncode == 2, r.stderr[-3000:]
  assert 'Traceback' not in r.stderr, r.stderr[-3000:]
  errors = [l for l in r.stderr.splitlines() if l.startswith('error: ')]
  assert len(errors) == 1, r.stderr[-3000:]
  for fragment in fragments:
    assert str(fragment) in errors[0]
  after = _snapshot(tmp, trained)
  assert sorted(map(str, after)) == sorted(map(str, before))
  assert after == before
