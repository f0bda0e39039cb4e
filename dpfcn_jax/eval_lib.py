"""Evaluation on whole scenes: tile, run, stitch, score (Table II), write maps.

Writes WORKDIR/eval/<split>/metrics.json shaped {"sites": {name: {...}}, "pooled":
{...}} and, per site, the LIM as GeoTIFF (georeferencing of the pre image), the
probability map, and a PNG coloured as the paper's Figs. 3-4.
"""
import json
import logging
import os

import jax
import ml_collections

from dpfcn_jax import checkpoint, inference, maps, metrics, train_state
from dpfcn_jax.data import io, pipeline
from dpfcn_jax.errors import CheckpointError
from dpfcn_jax.models import create_model

THRESHOLD = 0.5  # argmax of two softmax classes, Eq. (3)

log = logging.getLogger(__name__)


def evaluate_sites(model, params, sites, config, out_dir=None, infer=None):
  """Scores every site (and their pooled counts); writes maps into `out_dir` if given."""
  infer = infer or inference.make_infer_fn(model, tta=config.infer.tta)
  reports, counts = {}, []
  for site in sites:
    prob, _ = inference.scene_probability(infer, params, site.pre, site.post, config.infer.tile,
                                          config.infer.stride, config.infer.batch_size)
    pred = prob > THRESHOLD
    c = metrics.confusion(pred, site.mask, site.valid)
    counts.append(c)
    reports[site.name] = metrics.site_report(*c)
    if out_dir is not None:
      io.write_geotiff(os.path.join(out_dir, f'lim_{site.name}.tif'),
                       pred.astype('uint8'), site.geo, nodata=255 if site.geo else None)
      io.write_geotiff(os.path.join(out_dir, f'probability_{site.name}.tif'), prob, site.geo)
      maps.save_png(os.path.join(out_dir, f'map_{site.name}.png'),
                    maps.error_map(pred, site.mask, site.valid))
  return {'sites': reports, 'pooled': metrics.pooled(counts)}


def restore_params(workdir, step=None, which='latest'):
  """(model, params, saved config) of WORKDIR's checkpoint, on the local device(s).

  The architecture comes from the config saved beside the checkpoint, so eval
  and predict cannot silently build a different network. Without `step`, an
  unreadable newest checkpoint (a save killed half-way) gives way to the one before.
  """
  sub = os.path.join(workdir, 'best') if which == 'best' else workdir
  mngr = checkpoint.manager(sub, create=False)
  steps = [step] if step is not None else sorted(mngr.all_steps(), reverse=True)
  if not steps:
    checkpoint.saved_config(sub)  # raises the "no checkpoint found" error
  for s in steps:
    try:
      saved, _ = checkpoint.saved_config(sub, s)
      saved = ml_collections.ConfigDict(saved)
      model = create_model(saved.model)
      target = jax.eval_shape(lambda: train_state.create_train_state(
          saved, jax.random.key(0, impl=saved.prng_impl), model))  # pylint: disable=cell-var-from-loop
      state = checkpoint.restore(mngr, target, train_state.replicated_sharding(), s)
    except CheckpointError as e:
      if step is not None:
        raise
      log.warning('%s; trying an older checkpoint', e)
      continue
    log.info('restored step %d from %s', s, sub)
    return model, inference.local_copy(state.params), saved
  raise CheckpointError(f'{sub}: no readable checkpoint')


def evaluate(config, workdir, split):
  """Restores the newest (or best) checkpoint and evaluates `split`; returns the report."""
  sites = pipeline.load_split(config.data, split)
  which = 'best' if config.select_best and os.path.isdir(os.path.join(workdir, 'best')) \
      else 'latest'
  model, params, _ = restore_params(workdir, which=which)
  final = os.path.join(workdir, 'eval', split)
  if jax.process_index() != 0:  # every process computes; only process 0 writes
    return evaluate_sites(model, params, sites, config)
  with io.atomic_directory(final) as out:
    report = evaluate_sites(model, params, sites, config, out)
    with open(os.path.join(out, 'metrics.json'), 'w') as f:
      json.dump(report, f, indent=2)
  table = metrics.format_table({**report['sites'], 'pooled': report['pooled']})
  print(f'{split} split, {len(sites)} sites ({which} checkpoint):\n{table}\n'
        f'maps and metrics.json in {final}', flush=True)
  return report
