"""python -m dpfcn_jax.predict --workdir=W --pre=PRE --post=POST --out=DIR [--mask=M]
   python -m dpfcn_jax.predict --workdir=W --scenes=MANIFEST --out=DIR [--shard=I/N]

Maps a new scene of any size (predict_lib), or every scene of a manifest into
DIR/<id>/ with one merged inventory (batch_predict, mosaic), with a trained model:
checkpoint and architecture from W, no reference mask needed. Inference options
default to the checkpoint's config.infer; flags override them. A batch is shared
out over the processes of a jax.distributed job (the flags of dpfcn_jax.train), or
over SLURM array tasks (--shard, by default from SLURM_ARRAY_TASK_ID/COUNT).
"""
import json
import os

from absl import app, flags

import ml_collections

from dpfcn_jax import batch_predict, cli, distributed, metrics, predict_lib
from dpfcn_jax.errors import InputError

# config.infer fields that a flag of the same name overrides.
OVERRIDES = {'tile': int, 'stride': int, 'batch_size': int, 'tta': bool, 'mc_samples': int,
             'min_area_m2': float, 'fill_holes': bool, 'connectivity': int,
             'quicklook_side': int}


def define_flags():
  """Command-line flags; defined only when run as a program, so importing is free."""
  flags.DEFINE_string('workdir', None, 'Directory holding the trained checkpoints.')
  flags.DEFINE_string('pre', None, 'Pre-event image (GeoTIFF/TIFF/PNG/BMP/JPEG).')
  flags.DEFINE_string('post', None, 'Post-event image, on the same grid as --pre.')
  flags.DEFINE_string('scenes', None, 'Batch: a CSV of id,pre,post[,mask] or a folder of '
                      '<id>/{pre,post} folders, mapped into --out/<id>/.')
  flags.DEFINE_string('shard', None, 'Batch: map only scenes i, i+N, ... (I/N); default '
                      'from SLURM_ARRAY_TASK_ID/COUNT, else the jax.distributed process.')
  flags.DEFINE_string('out', None, 'Output directory: new, empty, or an earlier output of '
                      'predict, which is replaced atomically.')
  flags.DEFINE_boolean('overwrite', False, 'Write into an --out folder holding other files: '
                       'files of our output names are replaced, no other file is removed.')
  flags.DEFINE_string('mask', None, 'Optional reference mask: also score the map.')
  flags.DEFINE_integer('checkpoint_step', None, 'Checkpoint step (default: newest).')
  flags.DEFINE_string('compilation_cache', cli.COMPILATION_CACHE,
                      "Compiled programs are kept in WORKDIR/<this>, for the next run ('' = off).")
  define = {int: flags.DEFINE_integer, float: flags.DEFINE_float, bool: flags.DEFINE_boolean}
  for name, kind in OVERRIDES.items():
    define[kind](name, None, f'Overrides config.infer.{name} of the checkpoint.')
  distributed.define_flags()
  flags.mark_flags_as_required(['workdir', 'out'])


def _saved_xla_flags(workdir):
  """config.xla_flags of the training run, read before jax starts (orbax would start it)."""
  try:
    with open(os.path.join(workdir, 'config.json')) as f:
      return json.load(f).get('xla_flags', '')
  except (OSError, ValueError, AttributeError):
    return ''  # the checkpoint restore reports what is wrong with the workdir


def _batch(f, overrides):
  # No config file: the cluster flags alone, with jax's default join timeout.
  distributed.initialize_from_flags(ml_collections.ConfigDict(
      {'enabled': False, 'initialization_timeout': 300}))
  shard = f.shard or batch_predict.slurm_shard()
  rows, merged = batch_predict.run(f.workdir, f.scenes, f.out, f.checkpoint_step, overrides,
                                   batch_predict.parse_shard(shard) if shard else None)
  print(batch_predict.format_summary(rows), flush=True)
  if merged is not None:
    for layer, s in merged.items():
      print(f'merged inventory {layer}: {s["landslides"]} landslides, {s["area_m2"]:.1f} m2 '
            f'in all; {f.out}/inventory.gpkg, inventory.csv', flush=True)
  failed = [r['id'] for r in rows if r['status'] == 'failed']
  if failed:
    raise InputError(f'{len(failed)} of {len(rows)} scenes failed: {", ".join(failed)} '
                     '(reasons above; run again to retry them)')


def main(argv):
  del argv
  f = flags.FLAGS
  cli.setup(_saved_xla_flags(f.workdir))
  cli.use_compilation_cache(f.workdir, f.compilation_cache)
  with cli.user_errors():
    overrides = {k: f[k].value for k in OVERRIDES if f[k].value is not None}
    if f.scenes:
      if f.pre or f.post or f.mask:
        raise InputError('--scenes maps a manifest: leave out --pre, --post and --mask')
      return _batch(f, overrides)
    if not (f.pre and f.post):
      raise InputError('give --pre and --post, or --scenes for a batch')
    s = predict_lib.predict(f.workdir, f.pre, f.post, f.out, f.mask, f.checkpoint_step,
                            overrides, f.overwrite)
    print(f'{s["landslides"]} landslides, {s["area"]:.1f} {s["area_unit"]} in all, '
          f'{s["windows"]} windows at {s["windows_per_s"]:.1f}/s, '
          f'{predict_lib.duration(s["seconds"])}; outputs in {s["out"]}', flush=True)
    if 'metrics' in s:
      print(metrics.format_table({'scene': s['metrics']}), flush=True)


if __name__ == '__main__':
  define_flags()
  app.run(main)
