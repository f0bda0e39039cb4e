"""The project's own error types: everything a user can cause is one of these."""


class DpfcnError(Exception):
  """Base class; command-line entry points turn it into a message and exit code 2."""


class InputError(DpfcnError):
  """A raster, mask or site on disk is missing, unreadable or inconsistent."""


class ConfigError(DpfcnError):
  """The configuration is empty, contradictory or names something unknown."""


class CheckpointError(DpfcnError):
  """A workdir holds no usable checkpoint."""


class OutputError(DpfcnError):
  """An output path cannot be written without touching files this program did not write."""
