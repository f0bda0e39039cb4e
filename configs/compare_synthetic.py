"""The method comparison (Table IV) on the synthetic default (configs/synthetic.py).

  python -m dpfcn_jax.compare --config=configs/compare_synthetic.py \
      --workdir=runs/compare_synthetic --split=test [--config.compare.methods=else,rlse]

Every config carries `compare` (configs/default.py), so this is configs/synthetic.py;
it names the runs of docs/RESULTS.md. Each deep method is the base config with its
`compare.deep.<method>` overrides: the paper's keep probabilities for the baselines
(Section III-A), the demo's width, learning rate and steps for all. Override any of
them on the command line, e.g. --config.compare.deep.fcn.model.keep_prob=0.9.
"""
from dpfcn_jax import config_files

synthetic = config_files.sibling(__file__, 'synthetic')


def get_config():
  return synthetic.get_config()
