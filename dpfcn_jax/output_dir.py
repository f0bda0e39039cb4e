"""Output folders: ours only if we made them, replaced atomically, never a user's files.

Every command that writes a folder of results (predict, eval, compare, the scene
benchmark) leaves MARKER in it: a JSON naming the command, its arguments and the
files it wrote. An existing folder is replaced only when that marker is there and
the folder holds nothing else; an empty folder is used; any other folder is refused
before work starts, unless `overwrite`, which writes our files among the ones already
there (replacing those of the same names) and still removes nothing we did not write.

Results are written into a scratch folder beside the target and moved into place
at the end, so a failure, Ctrl-C or SIGTERM leaves the old outputs or the new ones,
never a mixture, and no scratch folder; one left by a killed process (SIGKILL) is
removed by the next run that writes the same target. The moves hold an advisory lock on the
parent folder, so two processes writing one target end with one complete set.
"""
import contextlib
import datetime
import fcntl
import glob
import json
import os
import pathlib
import shutil
import signal
import socket
import sys
import tempfile
import threading

from dpfcn_jax.errors import OutputError

MARKER = '.dpfcn_jax.json'
MARKER_TMP = f'{MARKER}.tmp'
TOOL = 'dpfcn_jax'
# Signals that end a run: turned into exceptions so scratch folders are removed.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def owned_files(folder):
  """The names our marker in `folder` lists, or None if it has no (readable) marker."""
  try:
    with open(os.path.join(folder, MARKER)) as f:
      marker = json.load(f)
  except (OSError, ValueError):
    return None
  if not isinstance(marker, dict) or marker.get('tool') != TOOL:
    return None
  return set(marker.get('files', ()))


def _state(final):
  """('absent' | 'empty' | 'ours' | 'foreign', names we wrote, names we did not)."""
  if not os.path.lexists(final):
    return 'absent', set(), set()
  if not final.is_dir():
    raise OutputError(f'{final}: exists and is not a directory; give a folder path for the '
                      'outputs')
  names = set(os.listdir(final)) - {MARKER, MARKER_TMP}  # a marker being written is ours
  ours = owned_files(final)
  if ours is None:
    return ('empty' if not names and not (final / MARKER).exists() else 'foreign'), set(), names
  return ('ours' if names <= ours else 'foreign'), ours & names, names - ours


def _describe(names):
  shown = ', '.join(sorted(names)[:5])
  return shown + (f' and {len(names) - 5} more' if len(names) > 5 else '')


def check(final, overwrite=False) -> pathlib.Path:
  """The resolved target; OutputError, before any work, if it is not ours to write."""
  final = pathlib.Path(os.path.realpath(os.path.expanduser(str(final))))
  state, _, theirs = _state(final)
  if state == 'foreign' and not overwrite:
    raise OutputError(f'{final}: folder holds files this program did not write '
                      f'({_describe(theirs)}); give another output path, or pass --overwrite '
                      'to write among them (none of them is removed)')
  ancestor = final.parent
  while not ancestor.exists():
    ancestor = ancestor.parent
  if not ancestor.is_dir():
    raise OutputError(f'{final}: {ancestor} is not a directory')
  if not os.access(ancestor, os.W_OK | os.X_OK):
    raise OutputError(f'{final}: cannot write in {ancestor} (permission denied or read-only)')
  return final


@contextlib.contextmanager
def atomic_directory(final, command, overwrite=False):
  """Yields a scratch folder that becomes `final` (see the module doc) if the block succeeds."""
  final = check(final, overwrite)
  created = _make_parents(final.parent)
  _remove_stale(final)
  scratch = _scratch(final, 'partial')
  done = False
  try:
    with _stop_signals_raise() as received:
      yield scratch
      if received:  # the raise was swallowed (say inside a gc callback): still no commit
        _raise(received[0], None)
      _commit(scratch, final, command, overwrite)
      done = True
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
    if not done:
      for folder in reversed(created):
        with contextlib.suppress(OSError):
          folder.rmdir()  # only the parents we made, and only while empty


def claim(folder, command):
  """Makes `folder`, or takes an empty one or one claimed before, for files written in place.

  Nothing in it is removed (but a VRT of our own that a later batch no longer writes,
  mosaic_vrt), so a claimed folder stays ours whatever it holds.
  """
  folder = pathlib.Path(os.path.realpath(os.path.expanduser(str(folder))))
  if owned_files(folder) is not None:
    return folder
  check(folder)
  _make_parents(folder.parent)
  with lock(folder.parent):  # the processes of one job claim it together
    if owned_files(folder) is None:
      check(folder)
      folder.mkdir(exist_ok=True)
      _write_marker(folder, command, [])
  return folder


def _make_parents(folder):
  missing = []
  while not folder.exists():
    missing.append(folder)
    folder = folder.parent
  for f in reversed(missing):
    f.mkdir(exist_ok=True)
  return list(reversed(missing))


def _scratch(final, kind):
  """A new `.NAME.KIND-PID@HOST-*` folder beside `final`: its name says whose it is."""
  return pathlib.Path(tempfile.mkdtemp(
      prefix=f'.{final.name}.{kind}-{os.getpid()}@{socket.gethostname()}-', dir=final.parent))


def _remove_stale(final):
  """Scratch folders beside `final` left by a process of this host that is gone (SIGKILL)."""
  for folder in final.parent.glob(f'.{glob.escape(final.name)}.*-*@*-*'):
    try:
      owner = folder.name[len(final.name) + 2:].split('-', 1)[1]
      pid, host = owner.split('@', 1)
      if host.rsplit('-', 1)[0] != socket.gethostname():
        continue
      os.kill(int(pid), 0)
    except ProcessLookupError:
      shutil.rmtree(folder, ignore_errors=True)
    except (OSError, ValueError, IndexError):
      continue  # not ours, or its process is alive


def _write_marker(folder, command, files):
  marker = {'tool': TOOL, 'command': command, 'argv': sys.argv, 'pid': os.getpid(),
            'written': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
            'files': sorted(files)}
  tmp = folder / MARKER_TMP
  tmp.write_text(json.dumps(marker, indent=2) + '\n')
  os.replace(tmp, folder / MARKER)


def _commit(scratch, final, command, overwrite):
  files = sorted(os.listdir(scratch))
  _write_marker(scratch, command, files)
  with lock(final.parent), _stop_signals_deferred():
    # Looked at again under the lock: another process may have written meanwhile.
    state, ours, theirs = _state(final)
    if state == 'foreign' and not overwrite:
      raise OutputError(f'{final}: files this program did not write appeared while it ran '
                        f'({_describe(theirs)}); nothing was changed')
    if state in ('absent', 'empty'):
      with contextlib.suppress(FileNotFoundError):
        (final / MARKER_TMP).unlink()  # ours, from a marker write that was cut off
      os.rename(scratch, final)  # rename(2) replaces an empty directory
    elif state == 'ours':
      aside = _scratch(final, 'old')
      os.rename(final, aside / final.name)
      os.rename(scratch, final)
      shutil.rmtree(aside)  # holds only files our marker listed
    else:
      _merge(scratch, final, files, ours, theirs)


def _merge(scratch, final, files, ours, theirs):
  """Moves our files in among other files; removes only our older files."""
  clash = [n for n in files if n in theirs and (final / n).is_dir()]
  if clash:
    raise OutputError(f'{final}: folders {_describe(clash)} are in the way of outputs of the '
                      'same names; nothing was changed')
  for name in files:
    os.replace(scratch / name, final / name)
  for name in ours - set(files):
    path = final / name
    shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
  os.replace(scratch / MARKER, final / MARKER)


@contextlib.contextmanager
def lock(folder):
  """An exclusive advisory lock on `folder` for the block (flock on its descriptor)."""
  fd = os.open(folder, os.O_RDONLY)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX)
    yield
  finally:
    os.close(fd)  # closing releases the lock


class Stopped(SystemExit):
  """A stop signal arrived: unwinds like an exception, exit status 128 + signal."""

  def __init__(self, signum):
    super().__init__(128 + signum)
    self.signum = signum


@contextlib.contextmanager
def _handlers(handler):
  """Installs `handler` for SIGINT and STOP_SIGNALS (main thread only; else a no-op)."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  signums = (signal.SIGINT, *STOP_SIGNALS)
  previous = {s: signal.signal(s, handler) for s in signums}
  try:
    yield
  finally:
    for s, h in previous.items():
      signal.signal(s, h)


def _raise(signum, frame):
  del frame
  raise KeyboardInterrupt if signum == signal.SIGINT else Stopped(signum)


@contextlib.contextmanager
def _stop_signals_raise():
  """Raises on a stop signal; yields the signals received.

  Python swallows (and prints) an exception raised where the handler happens to run
  inside a callback, such as jax's garbage-collection hook: the signal is then sent
  again, to unwind the work from a place where it can, and the commit checks the
  list in case even that did not.
  """
  received, previous_hook = [], sys.unraisablehook

  def handler(signum, frame):
    received.append(signum)
    _raise(signum, frame)

  def unraisable(info):
    if received and isinstance(info.exc_value, (Stopped, KeyboardInterrupt)):
      # From another thread, a moment later: raised here, it would be swallowed again.
      threading.Timer(0.01, os.kill, (os.getpid(), received[-1])).start()
    else:
      previous_hook(info)

  sys.unraisablehook = unraisable
  try:
    with _handlers(handler):
      yield received
  finally:
    sys.unraisablehook = previous_hook


@contextlib.contextmanager
def _stop_signals_deferred():
  """Holds stop signals while the moves run, then acts on the first one."""
  pending = []
  with _handlers(lambda signum, frame: pending.append(signum)):
    yield
  if pending:
    _raise(pending[0], None)
