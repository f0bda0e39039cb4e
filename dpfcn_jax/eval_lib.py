"""Evaluation on whole scenes: tile, run, stitch, score (Table II), write maps.

Writes WORKDIR/eval/<split>/metrics.json shaped {"sites": {name: {...}}, "pooled":
{...}} and, per site, the LIM as GeoTIFF (georeferencing of the pre image), the
probability map, and a PNG coloured as the paper's Figs. 3-4.
"""
import json
import logging
import os

import jax

from dpfcn_jax import metrics, output_dir, scene_map, scene_outputs
from dpfcn_jax.data import pipeline

log = logging.getLogger(__name__)


def evaluate_sites(mapper: scene_map.SceneMapper, sites, out_dir=None):
  """Scores every site (and their pooled counts); writes maps into `out_dir` if given."""
  reports, counts = {}, []
  for site in sites:
    prob, _ = mapper.probability(site.pre, site.post)
    pred = mapper.lim(prob)
    c = metrics.confusion(pred, site.mask, site.valid)
    counts.append(c)
    reports[site.name] = metrics.site_report(*c)
    if out_dir is not None:
      scene_outputs.write_site(out_dir, site.name, prob, pred, site.valid, site.geo, site.mask)
  return {'sites': reports, 'pooled': metrics.pooled(counts)}


def evaluate(config, workdir, split):
  """Restores the newest (or best) checkpoint and evaluates `split`; returns the report.

  The network comes from the checkpoint, the inference settings from `config`.
  """
  final = os.path.join(workdir, 'eval', split)
  if jax.process_index() == 0:
    output_dir.check(final)  # before the scenes are mapped, not after
  sites = pipeline.load_split(config.data, split)
  which = scene_map.which_checkpoint(config, workdir)
  mapper = scene_map.SceneMapper.restore(workdir, which=which,
                                         overrides={**config.infer.to_dict(), **scene_map.SCORING})
  if jax.process_index() != 0:  # every process computes; only process 0 writes
    return evaluate_sites(mapper, sites)
  with output_dir.atomic_directory(final, 'eval') as out:
    report = evaluate_sites(mapper, sites, out)
    with open(os.path.join(out, 'metrics.json'), 'w') as f:
      json.dump(report, f, indent=2)
  table = metrics.format_table({**report['sites'], 'pooled': report['pooled']})
  print(f'{split} split, {len(sites)} sites ({which} checkpoint):\n{table}\n'
        f'maps and metrics.json in {final}', flush=True)
  return report
