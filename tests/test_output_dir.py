"""output_dir: a user's folder is never emptied; ours are replaced whole or not at all.

The first tests pin the module in-process; the rest go through `python -m
dpfcn_jax.predict` in subprocesses, as a user meets it.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
import pytest
import tifffile
from PIL import Image

from conftest import REPO, load_config
from dpfcn_jax import checkpoint, output_dir, train_state
from dpfcn_jax.data import synthetic
from dpfcn_jax.errors import OutputError

TIMEOUT_S = 300
FAST = ['--tile=32', '--stride=24', '--batch_size=4']


def _snapshot(root):
  """Every path under `root` with its bytes (None for folders) and permission bits."""
  return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None, p.stat().st_mode)
          for p in [root, *sorted(root.rglob('*'))]}


def _user_folder(path):
  path.mkdir()
  (path / 'notes.txt').write_text('field notes')
  (path / 'lim.tif').write_bytes(b'my own raster')  # one of our output names
  (path / 'photos').mkdir()
  (path / 'photos' / 'a.jpg').write_bytes(b'\xff\xd8 jpeg')
  return path


def _siblings(path):
  return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f'.{path.name}.'))


# ---- in-process ----

def test_failure_leaves_nothing_and_removes_the_parents_it_made(tmp_path):
  final = tmp_path / 'a' / 'b' / 'out'
  with pytest.raises(RuntimeError):
    with output_dir.atomic_directory(final, 'test') as d:
      (d / 'half.tif').write_text('x')
      raise RuntimeError('boom')
  assert list(tmp_path.iterdir()) == []
  with output_dir.atomic_directory(final, 'test') as d:
    (d / 'a.txt').write_text('ok')
  assert (final / 'a.txt').read_text() == 'ok'
  assert output_dir.owned_files(final) == {'a.txt'}
  assert _siblings(final) == []


def test_our_folder_is_replaced_whole(tmp_path):
  final = tmp_path / 'out'
  with output_dir.atomic_directory(final, 'test') as d:
    (d / 'old.txt').write_text('1')
    (d / 'keep.txt').write_text('1')
  with output_dir.atomic_directory(final, 'test') as d:
    (d / 'keep.txt').write_text('2')
  assert sorted(os.listdir(final)) == [output_dir.MARKER, 'keep.txt']
  assert (final / 'keep.txt').read_text() == '2' and _siblings(final) == []


def test_foreign_folder_refused_unless_overwrite_which_removes_none_of_its_files(tmp_path):
  final = _user_folder(tmp_path / 'mine')
  before = _snapshot(final)
  with pytest.raises(OutputError, match='did not write.*lim.tif.*--overwrite'):
    output_dir.check(final)
  with output_dir.atomic_directory(final, 'test', overwrite=True) as d:
    (d / 'lim.tif').write_bytes(b'ours')
    (d / 'extra.tif').write_bytes(b'ours too')
  assert (final / 'lim.tif').read_bytes() == b'ours'  # --overwrite replaces our names
  for name in ('notes.txt', 'photos', 'photos/a.jpg'):
    assert before[name] == _snapshot(final)[name]
  assert output_dir.owned_files(final) == {'lim.tif', 'extra.tif'}
  # Still mixed with the user's files: a second run without --overwrite is refused,
  # and with it removes only what the first run wrote and this one does not.
  with pytest.raises(OutputError, match='notes.txt'):
    output_dir.check(final)
  with output_dir.atomic_directory(final, 'test', overwrite=True) as d:
    (d / 'lim.tif').write_bytes(b'ours again')
  assert sorted(os.listdir(final)) == sorted([output_dir.MARKER, 'lim.tif', 'notes.txt',
                                              'photos'])


def test_a_file_added_to_our_folder_makes_it_the_users(tmp_path):
  final = tmp_path / 'out'
  with output_dir.atomic_directory(final, 'test') as d:
    (d / 'lim.tif').write_text('1')
  (final / 'my_edit.qgz').write_text('a QGIS project')
  with pytest.raises(OutputError, match='my_edit.qgz'):
    output_dir.check(final)


def test_a_file_or_an_unwritable_parent_is_refused(tmp_path):
  (tmp_path / 'file').write_text('x')
  with pytest.raises(OutputError, match='exists and is not a directory'):
    output_dir.check(tmp_path / 'file')
  with pytest.raises(OutputError, match='is not a directory'):
    output_dir.check(tmp_path / 'file' / 'out')


def test_a_marker_of_someone_else_does_not_make_a_folder_ours(tmp_path):
  final = tmp_path / 'out'
  final.mkdir()
  (final / output_dir.MARKER).write_text('{"tool": "another"}')
  with pytest.raises(OutputError, match='did not write'):
    output_dir.check(final)


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_during_the_work_removes_the_scratch(tmp_path, signum):
  final = tmp_path / 'out'
  with output_dir.atomic_directory(final, 'test') as d:
    (d / 'a.txt').write_text('old')
  handler = signal.getsignal(signum)
  expected = KeyboardInterrupt if signum == signal.SIGINT else output_dir.Stopped
  with pytest.raises(expected):
    with output_dir.atomic_directory(final, 'test') as d:
      (d / 'a.txt').write_text('new')
      os.kill(os.getpid(), signum)
      time.sleep(5)  # the handler raises here
  assert (final / 'a.txt').read_text() == 'old' and _siblings(final) == []
  assert signal.getsignal(signum) is handler


def test_scratch_of_a_killed_process_is_removed_by_the_next_run(tmp_path):
  gone = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                        capture_output=True, text=True, check=True).stdout.strip()
  host = socket.gethostname()
  stale = tmp_path / f'.out.partial-{gone}@{host}-x1'
  alive = tmp_path / f'.out.partial-{os.getpid()}@{host}-x2'
  foreign = tmp_path / '.out.partial-notes'
  for folder in (stale, alive, foreign):
    folder.mkdir()
  with output_dir.atomic_directory(tmp_path / 'out', 'test') as d:
    (d / 'a.txt').write_text('x')
  assert not stale.exists() and alive.exists() and foreign.exists()


def test_claim_takes_new_empty_or_own_folders_only(tmp_path):
  assert output_dir.claim(tmp_path / 'new', 'test') == tmp_path / 'new'
  (tmp_path / 'new' / 'scene.tif').write_text('written in place')
  output_dir.claim(tmp_path / 'new', 'test')  # an earlier run's folder
  with pytest.raises(OutputError):
    output_dir.claim(_user_folder(tmp_path / 'mine'), 'test')


# ---- through the command line ----

@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
  """A checkpoint of a random tiny DP-FCN, and a scene of two sizes as PNG pairs."""
  c = load_config('synthetic')
  c.model.width, c.model.depth, c.data.tile, c.infer.stride = 4, 2, 32, 24
  path = tmp_path_factory.mktemp('work')
  state = train_state.create_train_state(c, jax.random.key(0, impl=c.prng_impl))
  checkpoint.save(checkpoint.manager(str(path)), jax.device_get(state), c)
  for name, (h, w) in {'small': (64, 80), 'large': (384, 384)}.items():
    s = synthetic.generate_scene(21, h, w)
    for date in ('pre', 'post'):
      Image.fromarray(s[date]).save(path / f'{name}_{date}.png')
  return path


def _command(workdir, out, scene='small', *flags):
  return [sys.executable, '-m', 'dpfcn_jax.predict', f'--workdir={workdir}',
          f'--pre={workdir / f"{scene}_pre.png"}', f'--post={workdir / f"{scene}_post.png"}',
          f'--out={out}', *FAST, *flags]


def _predict(*args, **kwargs):
  return subprocess.run(_command(*args, **kwargs), cwd=REPO, capture_output=True, text=True,
                        timeout=TIMEOUT_S, check=False)


@pytest.fixture(scope='module')
def previous(workdir, tmp_path_factory):
  """A predict output written into an existing empty folder (which is used)."""
  out = tmp_path_factory.mktemp('previous') / 'out'
  out.mkdir()
  done = _predict(workdir, out, 'small', '--mc_samples=2')
  assert done.returncode == 0, done.stderr[-3000:]
  return out


def _copy_of(previous, tmp_path):
  out = tmp_path / 'out'
  shutil.copytree(previous, out)
  return out, _snapshot(out)


def test_empty_folder_is_used(previous):
  names = set(os.listdir(previous))
  assert {'probability.tif', 'lim.tif', 'uncertainty.tif', 'inventory.geojson',
          output_dir.MARKER} <= names
  assert output_dir.owned_files(previous) == names - {output_dir.MARKER}
  assert _siblings(previous) == []


def test_previous_output_is_replaced(workdir, previous, tmp_path):
  out, _ = _copy_of(previous, tmp_path)
  done = _predict(workdir, out, 'large')
  assert done.returncode == 0, done.stderr[-3000:]
  assert tifffile.imread(out / 'lim.tif').shape == (384, 384)
  assert not (out / 'uncertainty.tif').exists()  # of the earlier run, without --mc_samples
  assert _siblings(out) == []


def test_users_folder_is_refused_unchanged_before_the_model_loads(tmp_path):
  out = _user_folder(tmp_path / 'mine')
  before = _snapshot(tmp_path)
  # No checkpoint at all: the refusal must come first, naming the folder.
  done = _predict(tmp_path / 'no-workdir', out)
  assert done.returncode == 2, done.stderr[-3000:]
  assert f'error: {out}: folder holds files this program did not write' in done.stderr
  assert 'Traceback' not in done.stderr and 'checkpoint' not in done.stderr
  assert _snapshot(tmp_path) == before


def test_out_at_a_file_fails_before_the_model_loads(tmp_path):
  (tmp_path / 'report.pdf').write_bytes(b'%PDF')
  before = _snapshot(tmp_path)
  for out, words in ((tmp_path / 'report.pdf', 'exists and is not a directory'),
                     (tmp_path / 'report.pdf' / 'out', 'report.pdf is not a directory')):
    done = _predict(tmp_path / 'no-workdir', out)
    assert done.returncode == 2 and words in done.stderr, done.stderr[-3000:]
    assert 'checkpoint' not in done.stderr
  assert _snapshot(tmp_path) == before


def test_out_in_a_read_only_folder_fails_before_the_model_loads():
  # Root ignores permission bits, so as root the command runs as an ordinary user.
  prefix = []
  if os.geteuid() == 0:
    if not shutil.which('setpriv'):
      pytest.skip('running as root without setpriv: no user for whom a folder is read-only')
    prefix = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']
  top = tempfile.mkdtemp()
  try:
    locked = os.path.join(top, 'locked')
    os.mkdir(locked)
    os.chmod(top, 0o755)
    os.chmod(locked, 0o555)
    env = dict(os.environ, JAX_ENABLE_COMPILATION_CACHE='false', HOME=top)
    run = lambda cmd: subprocess.run(prefix + cmd, cwd=REPO, env=env, capture_output=True,
                                     text=True, timeout=TIMEOUT_S, check=False)
    if prefix and run([sys.executable, '-c', 'import dpfcn_jax']).returncode:
      pytest.skip('an ordinary user cannot run this checkout\'s Python (a private folder)')
    done = run(_command(REPO / 'no-workdir', os.path.join(locked, 'out')))
    assert done.returncode == 2, done.stderr[-3000:]
    assert f'cannot write in {locked}' in done.stderr and 'checkpoint' not in done.stderr
    assert os.listdir(locked) == []
  finally:
    os.chmod(os.path.join(top, 'locked'), 0o755)
    shutil.rmtree(top)


def _wait_for_scratch(proc, out):
  deadline = time.time() + TIMEOUT_S
  while not _siblings(out):
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    assert time.time() < deadline, 'no scratch folder appeared'
    time.sleep(0.05)


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_mid_predict_keeps_the_old_outputs(workdir, previous, tmp_path, signum):
  out, before = _copy_of(previous, tmp_path)
  proc = subprocess.Popen(_command(workdir, out, 'large'), cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  _wait_for_scratch(proc, out)  # the model is loaded and windows are being written
  proc.send_signal(signum)
  _, stderr = proc.communicate(timeout=TIMEOUT_S)
  assert proc.returncode == 128 + signum, stderr[-3000:]
  assert 'Traceback' not in stderr
  assert _snapshot(out) == before and _siblings(out) == []


def test_two_predicts_to_one_out_end_in_one_complete_set(workdir, tmp_path):
  out = tmp_path / 'out'
  procs = {scene: subprocess.Popen(_command(workdir, out, scene), cwd=REPO,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for scene in ('small', 'large')}
  for proc in procs.values():
    _, stderr = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 0, stderr[-3000:]
  marker = json.loads((out / output_dir.MARKER).read_text())
  winner = next(s for s in procs if f'--pre={workdir / f"{s}_pre.png"}' in marker['argv'])
  shape = {'small': (64, 80), 'large': (384, 384)}[winner]
  assert set(marker['files']) == set(os.listdir(out)) - {output_dir.MARKER}
  for name in ('probability.tif', 'lim.tif'):
    assert tifffile.imread(out / name).shape == shape
  assert Image.open(out / 'quicklook.png').size == shape[::-1]
  assert np.isfinite(tifffile.imread(out / 'probability.tif')).all()
  assert _siblings(out) == []
