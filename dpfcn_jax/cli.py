"""What every command-line entry point shares: logging and user-facing errors."""
import contextlib
import logging
import sys

from absl import logging as absl_logging

from dpfcn_jax.errors import DpfcnError

EXIT_USER_ERROR = 2


def setup():
  # Our progress at INFO; libraries (orbax logs every file it writes) at WARNING.
  absl_logging.set_verbosity(absl_logging.WARNING)
  logging.getLogger('dpfcn_jax').setLevel(logging.INFO)
  # tifffile warns about nodata values it cannot cast; the value is still copied verbatim.
  logging.getLogger('tifffile').setLevel(logging.ERROR)


@contextlib.contextmanager
def user_errors():
  """Turns the project's errors into one clear line on stderr and exit status 2."""
  try:
    yield
  except DpfcnError as e:
    print(f'error: {e}', file=sys.stderr, flush=True)
    sys.exit(EXIT_USER_ERROR)
