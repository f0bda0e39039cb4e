"""What every command-line entry point shares: XLA flags, logging, user-facing errors
and the main of the commands a config file drives."""
import contextlib
import ctypes
import logging
import os
import sys

from absl import logging as absl_logging
import jax

from dpfcn_jax import distributed
from dpfcn_jax.errors import DpfcnError

EXIT_USER_ERROR = 2
# Where compiled programs persist under a workdir: config.compilation_cache's default,
# and predict's, which has no config file.
COMPILATION_CACHE = '.jax_cache'
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
# config.xla_flags were measured on these jax releases; XLA aborts the process on a
# flag it does not know, so other releases run with XLA's defaults.
XLA_FLAGS_JAX = ((0, 10),)

log = logging.getLogger(__name__)


def apply_xla_flags(flags: str, jax_version=jax.__version_info__):
  """Appends `flags` (XLA_FLAGS syntax) to the XLA_FLAGS environment variable.

  A flag that XLA_FLAGS already names keeps the user's value. XLA reads the
  variable once, when the first backend starts: call this before any computation.
  """
  if not flags.split():
    return
  if tuple(jax_version[:2]) not in XLA_FLAGS_JAX:
    log.warning('config.xla_flags %r not applied: measured on jax %s only', flags,
                ', '.join('.'.join(map(str, v)) for v in XLA_FLAGS_JAX))
    return
  current = os.environ.get('XLA_FLAGS', '')
  named = {f.split('=')[0] for f in current.split()}
  extra = [f for f in flags.split() if f.split('=')[0] not in named]
  os.environ['XLA_FLAGS'] = ' '.join([current, *extra]).strip()


def setup(xla_flags: str = ''):
  """Call first in main(): `xla_flags` is the run's config.xla_flags."""
  apply_xla_flags(xla_flags)
  # Our progress at INFO; libraries (orbax logs every file it writes) at WARNING.
  absl_logging.set_verbosity(absl_logging.WARNING)
  logging.getLogger('dpfcn_jax').setLevel(logging.INFO)
  # tifffile warns about nodata values it cannot cast; the value is still copied verbatim.
  logging.getLogger('tifffile').setLevel(logging.ERROR)


def compilation_cache_dir(workdir, folder, environ=os.environ):
  """WORKDIR/`folder`, where compiled programs persist so the next run loads them; None
  when `folder` is '' (off) or JAX_COMPILATION_CACHE_DIR names one (jax reads it itself,
  and an explicit choice wins)."""
  if not folder or environ.get('JAX_COMPILATION_CACHE_DIR'):
    return None
  return os.path.join(workdir, folder)


def use_compilation_cache(workdir, folder):
  """Turns on the persistent compilation cache of `compilation_cache_dir` (jax makes the
  folder at the first compilation); call before it. A place that cannot be written
  costs a warning, not the run."""
  path = compilation_cache_dir(workdir, folder)
  if path is None:
    return
  existing = path
  while not os.path.exists(existing) and os.path.dirname(existing) != existing:
    existing = os.path.dirname(existing) or os.curdir
  if not os.access(existing, os.W_OK):
    log.warning('compilation cache off: %s is not writable', existing)
    return
  jax.config.update('jax_compilation_cache_dir', path)
  if 'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS' not in os.environ:
    # jax keeps only programs that compiled for over 1 s; predict's, width 8 on 2 cores,
    # compile faster, and cached they still cut 1.2 of its 13 s (docs/RESULTS.md).
    jax.config.update('jax_persistent_cache_min_compile_time_secs', 0)


def release_heap():
  """Returns the heap memory glibc keeps after frees to the OS (malloc_trim).

  XLA compiles on a pool of threads, each with its own malloc arena, and glibc keeps
  what they free: after the DP-FCN training step compiled, 300-600 MiB stayed resident for
  the rest of the run (docs/RESULTS.md). A no-op where the C library has no malloc_trim.
  """
  try:
    ctypes.CDLL(None).malloc_trim(0)
  except (OSError, AttributeError):
    pass


@contextlib.contextmanager
def user_errors():
  """Turns the project's errors into one clear line on stderr and exit status 2 (130 for Ctrl-C)."""
  try:
    yield
  except DpfcnError as e:
    print(f'error: {e}', file=sys.stderr, flush=True)
    sys.exit(EXIT_USER_ERROR)
  except KeyboardInterrupt:  # Ctrl-C: the outputs say what was kept, a traceback would not
    print('interrupted', file=sys.stderr, flush=True)
    sys.exit(EXIT_INTERRUPTED)


def config_main(config_flag, run, multihost=True):
  """The absl `main` of a command driven by a config file: `run(config)` after setup.

  XLA flags go first (jax must not have started); then, with `multihost`, this
  process joins its job (the flags of distributed.define_flags); errors a user
  can cause end as one line and exit status 2.
  """
  def main(argv):
    del argv
    config = config_flag.value
    setup(config.xla_flags)
    with user_errors():
      if multihost:
        distributed.initialize_from_flags(config.distributed)
      run(config)

  return main
