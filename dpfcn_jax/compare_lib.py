"""The paper's method comparison (Section III-C, Table IV, Figs. 3-4) in one harness.

Every method maps the same sites of one split and is scored with the same Table II
criteria:

  * CMI + Otsu: the change magnitude image thresholded at Otsu's threshold, the
    plain reference every other method has to beat;
  * ELSE, RLSE, LSELUC: the level sets of dpfcn_jax.levelsets on `config.levelset`;
  * FCN, U-Net, FCN-PP, DP-FCN: each network is the base config with the
    overrides of `config.compare.deep.<method>` (Section III-A's settings),
    trained in WORKDIR/<method> by train_lib unless a finished checkpoint is
    already there, then run over whole scenes as eval_lib does.

WORKDIR/compare/<split>/ (replaced as a whole, only on success) holds
table.md (Table IV: rows grouped by site, then pooled; percentages), table.csv
(the same rows as fractions, with the confusion counts), methods.json (what
each method ran with: the deep ones' training budget and checkpoint) and
figure_<site>.png (Figs. 3-4: one error map per method and the reference).
"""
import copy
import csv
import json
import logging
import os
import string
import time

import ml_collections
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dpfcn_jax import (checkpoint, levelsets, maps, metrics, output_dir, scene_map,
                       train_lib)
from dpfcn_jax.data import pipeline
from dpfcn_jax.errors import CheckpointError, ConfigError, InputError

# Table IV's order, the threshold reference first; values are the printed names.
LABELS = {'cmi_otsu': 'CMI+Otsu', 'else': 'ELSE', 'rlse': 'RLSE', 'lseluc': 'LSELUC',
          'fcn': 'FCN', 'unet': 'U-Net', 'fcnpp': 'FCN-PP', 'dpfcn': 'DP-FCN'}
DEEP = ('fcn', 'unet', 'fcnpp', 'dpfcn')
KEYS = ('cp', 'cr', 'qa', 'oa', 'aa', 'f1')  # Table IV's criteria plus F1
POOLED = 'pooled'
# The config.levelset sections each level-set method reads.
LEVELSET_SECTIONS = {'cmi_otsu': ('cmi',), 'else': ('cmi', 'else_'), 'rlse': ('cmi', 'rlse'),
                     'lseluc': ('cmi', 'lseluc')}
BUDGET_KEYS = ('num_train_steps', 'batch_size', 'learning_rate', 'lr_schedule', 'model.width',
               'model.depth', 'model.keep_prob', 'data.tile')

# Figure layout, in pixels.
PAD = 4
SWATCH = 10
LEGEND = (('tp', 'correct change'), ('tn', 'unchanged'), ('fn', 'missed'),
          ('fp', 'false detection'))

log = logging.getLogger(__name__)


def parse_methods(spec: str) -> tuple:
  """Methods named in a comma-separated string, in Table IV's order."""
  names = [s.strip().lower() for s in str(spec).split(',') if s.strip()]
  unknown = sorted(set(names) - set(LABELS))
  if unknown or not names:
    raise ConfigError(f'compare.methods {spec!r}: unknown {unknown}; choose from '
                      f'{",".join(LABELS)}')
  return tuple(m for m in LABELS if m in names)


def override(config, overrides):
  """A copy of `config` with the nested `overrides` set; only existing fields may be set."""
  out = copy.deepcopy(config)

  def apply(node, update, path):
    for key, value in update.items():
      if key not in node:
        raise ConfigError(f'compare override {path}{key}: the config has no such field')
      if isinstance(value, (dict, ml_collections.ConfigDict)):
        apply(node[key], value, f'{path}{key}.')
        continue
      try:
        node[key] = value
      except TypeError as e:
        raise ConfigError(f'compare override {path}{key}={value!r}: {e}') from e

  apply(out, overrides, '')
  return out


def method_config(config, method):
  """The config a deep method trains and runs with: base + compare.deep.<method>."""
  if method not in config.compare.deep:
    raise ConfigError(f'config.compare.deep has no entry for {method!r}')
  return override(config, config.compare.deep[method])


def budget(config) -> dict:
  """The training settings the methods.json and RESULTS tables report."""
  out = {}
  for key in BUDGET_KEYS:
    node = config
    for part in key.split('.'):
      node = node[part]
    out[key] = node
  return out


def _latest_step(workdir):
  if not os.path.isdir(os.path.join(workdir, 'checkpoints')):
    return None
  mngr = checkpoint.manager(workdir, create=False)
  try:
    return mngr.latest_step()
  finally:
    mngr.close()


def ensure_trained(config, workdir) -> dict:
  """Trains in `workdir` unless its newest checkpoint already reaches num_train_steps.

  A shorter run (say one stopped by SIGTERM) resumes where it stopped.
  """
  step = _latest_step(workdir)
  if step is not None and step >= config.num_train_steps:
    log.info('%s: reusing the checkpoint of step %d', workdir, step)
    return {'trained': False, 'train_s': None}
  t0 = time.time()
  train_lib.train_and_evaluate(config, workdir)
  return {'trained': True, 'resumed_from': step, 'train_s': round(time.time() - t0, 1)}


def deep_predictor(config, workdir):
  """(site -> bool map, info) for the network checkpointed in `workdir`."""
  which = scene_map.which_checkpoint(config, workdir)
  mapper = scene_map.SceneMapper.restore(workdir, which=which,
                                         overrides={**config.infer.to_dict(), **scene_map.SCORING})
  if mapper.config.model.name != config.model.name:
    raise CheckpointError(f'{workdir} holds a {mapper.config.model.name!r} checkpoint, expected '
                          f'{config.model.name!r}')
  predict = lambda site: mapper.lim(mapper.probability(site.pre, site.post)[0])
  # The budget of the run that made the checkpoint, which may predate this config.
  step = _latest_step(os.path.join(workdir, 'best') if which == 'best' else workdir)
  return predict, {'checkpoint': which, 'step': step, **budget(mapper.config)}


def predictor(config, workdir, method):
  """(site -> bool change map, info dict) for any method; trains deep ones if needed."""
  if method not in DEEP:
    return (lambda site: levelsets.run_method(method, site.pre, site.post, config.levelset),
            {f'levelset.{s}': config.levelset[s].to_dict() for s in LEVELSET_SECTIONS[method]})
  cfg = method_config(config, method)
  method_dir = os.path.join(workdir, method)
  trained = ensure_trained(cfg, method_dir)
  predict, info = deep_predictor(cfg, method_dir)
  return predict, {**trained, **info, 'workdir': method_dir}


def score(preds, sites, methods):
  """{site or POOLED: {method: metrics.site_report}} of every method's maps."""
  reports = {s.name: {} for s in sites}
  reports[POOLED] = {}
  for m in methods:
    counts = []
    for s in sites:
      c = metrics.confusion(preds[m][s.name], s.mask, s.valid)
      counts.append(c)
      reports[s.name][m] = metrics.site_report(*c)
    reports[POOLED][m] = metrics.pooled(counts)
  return reports


def format_markdown(reports) -> str:
  """Table IV: one row per (site, method), sites in order, pooled last; percentages."""
  lines = ['| Site | Method | ' + ' | '.join(k.upper() for k in KEYS) + ' |',
           '|---|---' + '|---:' * len(KEYS) + '|']
  for site, by_method in reports.items():
    for m, r in by_method.items():
      lines.append(f'| {site} | {LABELS[m]} | '
                   + ' | '.join(f'{100 * r[k]:.2f}' for k in KEYS) + ' |')
  return '\n'.join(lines)


def write_csv(path, reports):
  """The rows of the Markdown table as fractions in [0, 1], with the confusion counts."""
  counts = ('tp', 'fp', 'fn', 'tn')
  with open(path, 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(('site', 'method') + KEYS + counts)
    for site, by_method in reports.items():
      for m, r in by_method.items():
        w.writerow((site, m) + tuple(f'{r[k]:.6f}' for k in KEYS) + tuple(r[k] for k in counts))


def _rgb(image):
  """(H, W, B) floats in [0, 1] -> (H, W, 3) uint8 (first three bands, or grey)."""
  image = np.asarray(image, np.float32)
  if image.ndim == 2 or image.shape[-1] < 3:
    image = np.repeat(image.reshape(image.shape[:2] + (-1,))[..., :1], 3, axis=-1)
  return (np.clip(image[..., :3], 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def figure(site, preds, methods, panel_px, columns) -> Image.Image:
  """Figs. 3-4 for one site: pre, post, (a).. one error map per method, reference.

  Error maps follow maps.error_map (white correct change, black unchanged, red
  missed, aqua false detection); each panel is shrunk by box averaging so that
  its longest side is at most `panel_px`.
  """
  maps_ = [(f'({letter}) {LABELS[m]}', maps.error_map(preds[m][site.name], site.mask,
                                                     site.valid))
           for letter, m in zip(string.ascii_lowercase, methods)]
  letter = string.ascii_lowercase[len(methods)]
  panels = ([('pre', _rgb(site.pre)), ('post', _rgb(site.post))] + maps_
            + [(f'({letter}) reference', maps.lim_map(site.mask))])
  h, w = site.mask.shape
  scale = min(1.0, panel_px / max(h, w))
  size = (max(1, round(w * scale)), max(1, round(h * scale)))
  font = ImageFont.load_default()
  text_h = font.getbbox('Ag(')[3]
  cell_w, cell_h = size[0] + 2 * PAD, size[1] + text_h + 3 * PAD
  rows = -(-len(panels) // columns)
  legend_h = max(text_h, SWATCH) + 2 * PAD
  canvas = Image.new('RGB', (columns * cell_w, rows * cell_h + legend_h), 'white')
  draw = ImageDraw.Draw(canvas)
  for i, (label, rgb) in enumerate(panels):
    x, y = (i % columns) * cell_w + PAD, (i // columns) * cell_h + PAD
    draw.text((x, y), label, fill='black', font=font)
    canvas.paste(Image.fromarray(rgb).resize(size, Image.Resampling.BOX), (x, y + text_h + PAD))
  x, y = PAD, rows * cell_h + PAD
  for key, text in LEGEND:
    draw.rectangle((x, y, x + SWATCH, y + SWATCH), fill=maps.COLOURS[key], outline='black')
    x += SWATCH + PAD
    draw.text((x, y), text, fill='black', font=font)
    x += int(draw.textlength(text, font=font)) + 3 * PAD
  return canvas


def compare(config, workdir, split):
  """Runs, scores and draws every method of config.compare.methods on `split`.

  Returns {site or 'pooled': {method: report}}.
  """
  methods = parse_methods(config.compare.methods)
  final = os.path.join(workdir, 'compare', split)
  output_dir.check(final)  # before the methods run, not after
  sites = pipeline.load_split(config.data, split)
  missing = [s.name for s in sites if s.mask is None]
  if missing:
    raise InputError(f'split {split!r}: no reference mask for {missing}')
  preds, runs = {}, {}
  for m in methods:
    log.info('%s: preparing', LABELS[m])
    predict, info = predictor(config, workdir, m)
    t0 = time.time()
    preds[m] = {s.name: np.asarray(predict(s), bool) for s in sites}
    runs[m] = {**info, 'predict_s': round(time.time() - t0, 1)}
    log.info('%s: %d sites in %.1f s', LABELS[m], len(sites), runs[m]['predict_s'])
  reports = score(preds, sites, methods)
  table = format_markdown(reports)
  with output_dir.atomic_directory(final, 'compare') as out:
    with open(os.path.join(out, 'table.md'), 'w') as f:
      f.write(table + '\n')
    write_csv(os.path.join(out, 'table.csv'), reports)
    with open(os.path.join(out, 'methods.json'), 'w') as f:
      json.dump(runs, f, indent=2, default=str)
    for s in sites:
      figure(s, preds, methods, config.compare.figure_panel_px,
             config.compare.figure_columns).save(os.path.join(out, f'figure_{s.name}.png'))
  print(f'{split} split, {len(sites)} sites (percent):\n{table}\n'
        f'tables, methods.json and figures in {final}', flush=True)
  return reports
