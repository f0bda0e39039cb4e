"""python -m dpfcn_jax.crossval_table --workdir=W [--name=rows] RUN [RUN ...]

One table over finished cross-validations W/RUN (each with its crossval.json), one row
per run at its last step: W/<name>.md and W/<name>.json.
"""
from absl import app, flags

from dpfcn_jax import cli, crossval_compare

_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory holding the runs.')
_NAME = flags.DEFINE_string('name', 'rows', 'Writes W/<name>.md and W/<name>.json.')
flags.mark_flags_as_required(['workdir'])


def main(argv):
  if len(argv) < 2:
    raise app.UsageError('name one or more runs (folders of --workdir)')
  with cli.user_errors():
    crossval_compare.collect(_WORKDIR.value, argv[1:], _NAME.value)


if __name__ == '__main__':
  app.run(main)
