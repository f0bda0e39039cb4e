"""Config files (configs/*.py) loaded by path, and where their real data sets live.

Config files build on each other through `sibling`, not `import configs...`: that
needs the repository root on sys.path, so commands would run only from there. The
package itself never loads a config file; the command line hands it the config.
"""
import importlib.util
import os
import pathlib

from dpfcn_jax.errors import ConfigError

DATA_ENV = 'DPFCN_DATA'  # folder holding the real data sets, e.g. DIR/sztaki-airchange


def load(path):
  """The module of the config file at `path`."""
  path = pathlib.Path(path).resolve()
  if not path.is_file():
    raise ConfigError(f'{path}: config file not found')
  spec = importlib.util.spec_from_file_location(f'dpfcn_config_{path.stem}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def sibling(config_file, name):
  """The config file `name`.py in the folder of `config_file` (pass `__file__`)."""
  return load(pathlib.Path(config_file).resolve().parent / f'{name}.py')


def data_dir(config_file) -> pathlib.Path:
  """$DPFCN_DATA, else shared/data beside the repository holding `config_file`.

  Resolved from the file, not the working directory, so a relative data root in a
  config means the same folder whichever directory a command runs in.
  """
  if os.environ.get(DATA_ENV):
    return pathlib.Path(os.environ[DATA_ENV]).resolve()
  repository = pathlib.Path(config_file).resolve().parent.parent
  return repository.parent / 'shared' / 'data'
