"""The method comparison (Table IV) on the synthetic default (configs/synthetic.py).

  python -m dpfcn_jax.compare --config=configs/compare_synthetic.py \
      --workdir=runs/compare_synthetic --split=test [--config.compare.methods=else,rlse]

Each deep method is configs/synthetic.py with its `compare.deep.<method>`
overrides: the paper's keep probabilities for the baselines (Section III-A),
the demo's width, learning rate and steps for all. Override any of them on the
command line, e.g. --config.compare.deep.fcn.model.keep_prob=0.9.
"""
import ml_collections

from configs import synthetic

# Table IV's methods; CMI + Otsu is the plain threshold every method must beat.
ALL_METHODS = 'cmi_otsu,else,rlse,lseluc,fcn,unet,fcnpp,dpfcn'


def compare_section():
  """config.compare: the methods to run and how each network departs from the base config."""
  s = ml_collections.ConfigDict()
  s.methods = ALL_METHODS           # comma-separated subset, run in Table IV's order
  s.deep = ml_collections.ConfigDict({
      'fcn': {'model': {'name': 'fcn', 'keep_prob': 0.5}},      # [paper] lr: the base config's
      'unet': {'model': {'name': 'unet', 'keep_prob': 0.6}},    # [paper] lr: the base config's
      'fcnpp': {'model': {'name': 'fcnpp', 'keep_prob': 0.6}},  # [paper] 1x1 pyramid convs built in
      'dpfcn': {'model': {'name': 'dpfcn'}},                    # the base config unchanged
  })
  s.figure_panel_px = 320           # longest side of each map in figure_<site>.png
  s.figure_columns = 4              # panels per row of the figure
  return s


def get_config():
  c = synthetic.get_config()
  c.compare = compare_section()
  return c
